"""SIP for fax: a sans-IO user agent (messages, transactions, dialogs, offer/answer with
T.38 and G.711, registration and digest auth). The asyncio driver is drivers/sip.py."""
__all__: list[str] = []
