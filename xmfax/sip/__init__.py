"""SIP for fax: a sans-IO user agent (messages, transactions, dialogs, offer/answer with
T.38 and G.711, registration and digest auth). The asyncio driver is drivers/sip.py.

Layers, each using only those above it: message (parse/encode), sdp and auth, transaction
(RFC 3261 §17), then the user agent: ua (UserAgent, UAConfig) with its halves uac and uas,
dialog (dialogs and calls), register (REGISTER) and events (what the driver is told).
Nothing is re-exported here, so that importing one layer never loads the others."""
__all__: list[str] = []
