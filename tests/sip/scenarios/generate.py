"""Writes the sipp scenarios of tests/sip/scenarios/ (run: python3 tests/sip/scenarios/generate.py).

The XML files are committed; this keeps their shared pieces (SDP, Contact with the uppercase
transport, the BYE-from-either-side ending) identical. Edit here, regenerate, and run
tests/interop/test_sip_sipp.py::test_scenario_against_sipp (each scenario against a sipp partner).
"""
import os, re
OUT = os.path.dirname(os.path.abspath(__file__))
HDR = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
CONTACT = "Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>"
SDP_AUDIO = """      v=0
      o=sipp {sess} {ver} IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 8 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
      a=sendrecv
"""
SDP_AUDIO_ANSWER = """      v=0
      o=sipp {sess} {ver} IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=ptime:20
      a=sendrecv
"""
SDP_T38 = """      v=0
      o=sipp {sess} {ver} IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=image [t38_port] udptl t38
      a=T38FaxVersion:0
      a=T38MaxBitRate:14400
      a=T38FaxRateManagement:transferredTCF
      a=T38FaxMaxBuffer:262
      a=T38FaxMaxDatagram:[t38_datagram]
      a=T38FaxUdpEC:t38UDPRedundancy
"""
CHECK_IMAGE = '<ereg regexp="m=image [1-9][0-9]* udptl t38" search_in="body" check_it="true" assign_to="{v}"/>'
CHECK_AUDIO = '<ereg regexp="m=audio [1-9][0-9]* RTP/AVP" search_in="body" check_it="true" assign_to="{v}"/>'
GRAB_CONTACT = '<ereg regexp="&lt;?(sips?:[^&gt;]*)" search_in="hdr" header="Contact:" check_it="true" assign_to="c_all,contact"/>'


def msg(text, attrs=""):
    return f"  <send{attrs}>\n    <![CDATA[\n{text}\n    ]]>\n  </send>\n"


def resp(status, reason, extra="", sdp=None, tag=False, rr=False):
    lines = [f"      SIP/2.0 {status} {reason}", "      [last_Via:]", "      [last_From:]",
             "      [last_To:]" + (";tag=[pid]SIPpTag01[call_number]" if tag else ""),
             "      [last_Call-ID:]", "      [last_CSeq:]"]
    if rr:
        lines.append("      [last_Record-Route:]")
    if status < 300 or status == 180:
        lines.append("      " + CONTACT)
    for e in extra.splitlines():
        if e.strip():
            lines.append("      " + e.strip())
    if sdp:
        lines += ["      Content-Type: application/sdp", "      Content-Length: [len]", "", sdp]
    else:
        lines += ["      Content-Length: 0", ""]
    return "\n".join(lines)


# ---- UAC (sipp calls) ---------------------------------------------------------------
FROM_UAC = 'From: "Fax Sender" <sip:+15550123@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]'


def uac_invite(sdp, cseq=1, rtd=True):
    return msg(f"""      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {FROM_UAC}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      {CONTACT}
      P-Asserted-Identity: "Fax Sender" <sip:+15550199@[local_ip]>
      Max-Forwards: 70
      User-Agent: sipp xmfax-scenario
      Content-Type: application/sdp
      Content-Length: [len]

{sdp}""", ' retrans="500"' + (' start_rtd="setup"' if rtd else ''))


def content(sdp=None):
    """The end of a request: the SDP with its Content-Type, or Content-Length 0."""
    return (f"      Content-Type: application/sdp\n      Content-Length: [len]\n\n{sdp}" if sdp
            else "      Content-Length: 0\n")


def uac_in_dialog(method, cseq, sdp=None, attrs=' retrans="500"'):
    return msg(f"""      {method} [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {FROM_UAC}
      To: [$to_hdr]
      [routes]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      {CONTACT}
      Max-Forwards: 70
{content(sdp)}""", attrs if method != "ACK" else "")


def uac_wait_answer(check):
    return f"""  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true" timeout="15000" rtd="setup">
    <action>
      {GRAB_CONTACT}
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to_hdr"/>
      {check}
    </action>
  </recv>
"""


def either_hangs_up(our_bye):
    """wait up to @bye_wait@ ms for the far end's BYE; else send ``our_bye``."""
    return f"""  <recv request="BYE" timeout="@bye_wait@" ontimeout="sipp_hangs_up"/>
{msg(resp(200, "OK"))}  <nop next="done"/>

  <label id="sipp_hangs_up"/>
{our_bye}  <recv response="200" timeout="10000"/>

  <label id="done"/>
  <timewait milliseconds="@linger@"/>
"""


def uac_end(bye_cseq):
    return either_hangs_up(uac_in_dialog("BYE", bye_cseq))


def uas_end():
    return either_hangs_up(uas_in_dialog("BYE", 101))


def uac_ack_failure(branch, cseq=1, uri="sip:[service]@[remote_ip]:[remote_port]", to="[last_To:]"):
    """sipp's ACK to a non-2xx final response, on a branch of its own (RFC 3261 §17.1.1.3)."""
    return msg(f"""      ACK {uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-{branch}]
      {FROM_UAC}
      {to}
      Call-ID: [call_id]
      CSeq: {cseq} ACK
      Max-Forwards: 70
      Content-Length: 0
""")


def recv_reinvite(extra=""):
    """the far end's re-INVITE, which must offer T.38"""
    return f"""  <recv request="INVITE" timeout="10000">
    <action>
      {CHECK_IMAGE.format(v="i_m")}{extra}
    </action>
  </recv>
"""


def recv_reinvite_ok():
    """the 200 to sipp's own re-INVITE, which must answer T.38"""
    return f"""  <recv response="100" optional="true"/>
  <recv response="200" timeout="10000">
    <action>
      {CHECK_IMAGE.format(v="i_m")}
    </action>
  </recv>
"""


# ---- UAS (sipp answers) --------------------------------------------------------------
def uas_recv_invite(check, extra=""):
    return f"""  <recv request="INVITE" crlf="true">
    <action>
      {GRAB_CONTACT}
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="from_hdr"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to_hdr"/>
      {check}{extra}
    </action>
  </recv>
"""


def uas_in_dialog(method, cseq, sdp=None):
    return msg(f"""      {method} [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$to_hdr];tag=[pid]SIPpTag01[call_number]
      To: [$from_hdr]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      {CONTACT}
      Max-Forwards: 70
{content(sdp)}""", ' retrans="500"' if method != "ACK" else "")


UAS_ACK_FAILURE = msg("""      ACK [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
      From: [$to_hdr];tag=[pid]SIPpTag01[call_number]
      To: [$from_hdr]
      Call-ID: [call_id]
      CSeq: 100 ACK
      Max-Forwards: 70
      Content-Length: 0
""")
UAS_200_AUDIO = msg(resp(200, "OK", tag=True, rr=True, sdp=SDP_AUDIO_ANSWER.format(sess=7, ver=1)),
                    ' retrans="500"')


def scenario(name, doc, body):
    text = f"{HDR}<!--\n{doc.strip()}\n-->\n<scenario name=\"{name}\">\n{body}</scenario>\n"
    assigned = []
    for v in re.findall(r'assign_to="([^"]+)"', text):
        for n in v.split(","):
            if n not in assigned and f"[${n}]" not in text:
                assigned.append(n)
    if assigned:
        text = text.replace("</scenario>", f'  <Reference variables="{",".join(assigned)}"/>\n</scenario>')
    return text


def write(fname, name, doc, body):
    with open(os.path.join(OUT, fname), "w") as f:
        f.write(scenario(name, doc, body))


COMMON_UAC = """Keys (-key): [t38_port] where sipp says its T.38 goes, [t38_datagram] its T38FaxMaxDatagram. Template parameter (tests/sip/peers.py
  fills it in): @bye_wait@ ms to wait for the far end's BYE before sipp sends its own. Request-URI user: -s (the DNIS). From +15550123,
  P-Asserted-Identity +15550199 (the ANI). Contact with uppercase transport=UDP/TCP."""
COMMON_UAS = """Keys (-key): [t38_port] where sipp says its T.38 goes, [t38_datagram] its T38FaxMaxDatagram. Template parameter (tests/sip/peers.py
  fills it in): @bye_wait@ ms to wait for the far end's BYE before sipp sends its own. Contact with uppercase transport=UDP/TCP. -d: the
  pause where the scenario has one."""

# =============================== sipp calls xmfax ======================================
write("uac_g711_await_reinvite.xml", "xmfax answers G.711 and re-INVITEs to T.38", f"""
sipp calls (UAC) with G.711 only and waits for the callee's own re-INVITE to T.38 (xmfax
receiving: t38_switch_after), answers it 200 with m=image, then either side hangs up.
Checks: the 200 answers audio; the re-INVITE carries m=image udptl t38 and is in the dialog
(sipp's tag in its To).
{COMMON_UAC}""",
      uac_invite(SDP_AUDIO.format(sess=1, ver=1)) + uac_wait_answer(CHECK_AUDIO.format(v="a_m"))
      + uac_in_dialog("ACK", 1) + "\n" + recv_reinvite(
          '\n      <ereg regexp="SIPpTag00[0-9]+" search_in="hdr" header="To:" check_it="true" assign_to="i_to"/>') + msg(resp(200, "OK", sdp=SDP_T38.format(sess=1, ver=2))) + '  <recv request="ACK" timeout="10000"/>\n\n'
      + uac_end(2))

write("uac_g711_sipp_reinvites.xml", "sipp calls with G.711 and re-INVITEs to T.38 itself", f"""
sipp calls (UAC) with G.711, and right after the ACK re-INVITEs to T.38 itself (as a
gateway does on CED), before the callee's own switch (xmfax: t38_switch_after 1 s). The
callee must answer 200 with m=image; then either side hangs up.
{COMMON_UAC}""",
      uac_invite(SDP_AUDIO.format(sess=1, ver=1)) + uac_wait_answer(CHECK_AUDIO.format(v="a_m"))
      + uac_in_dialog("ACK", 1) + "\n  <pause/>\n\n"
      + uac_in_dialog("INVITE", 2, SDP_T38.format(sess=1, ver=2))
      + recv_reinvite_ok() + uac_in_dialog("ACK", 2) + "\n" + uac_end(3))

write("uac_t38.xml", "sipp calls offering T.38 only", f"""
sipp calls (UAC) with an INVITE offering T.38 only (m=image, no audio). The callee must answer
200 with m=image directly; then either side hangs up.
{COMMON_UAC}""",
      uac_invite(SDP_T38.format(sess=1, ver=1)) + uac_wait_answer(CHECK_IMAGE.format(v="i_m"))
      + uac_in_dialog("ACK", 1) + "\n" + uac_end(2))

write("uac_g711_refuse_t38.xml", "sipp calls with G.711 and refuses the T.38 re-INVITE with 488", f"""
sipp calls (UAC) with G.711, answers the callee's re-INVITE to T.38 with 488 Not Acceptable
Here (a phone without T.38), and then waits: the call stays up on G.711 (RFC 3261 §14.1)
until a BYE in the same dialog (xmfax: reason t38_refused) or sipp's own after @bye_wait@ ms.
Checks: an ACK to the 488 (by the callee's INVITE client transaction); no second INVITE.
{COMMON_UAC}""",
      uac_invite(SDP_AUDIO.format(sess=1, ver=1)) + uac_wait_answer(CHECK_AUDIO.format(v="a_m"))
      + uac_in_dialog("ACK", 1) + "\n" + recv_reinvite() + msg(resp(488, "Not Acceptable Here", extra='Warning: 304 sipp "Media type not available"'))
      + '  <recv request="ACK" timeout="10000"/>\n\n' + uac_end(2))

write("uac_cancel.xml", "sipp calls and CANCELs before the answer", f"""
sipp calls (UAC) and CANCELs after a provisional response, before any final answer
(the callee's on_call is still deciding). Expected: 200 to the CANCEL, 487 Request
Terminated to the INVITE, which sipp ACKs (RFC 3261 §9.2). sipp CANCELs on a 180, or
@ring_wait@ ms after the 100 without one.
{COMMON_UAC}""",
      uac_invite(SDP_AUDIO.format(sess=1, ver=1), rtd=False) + """  <recv response="100" timeout="5000"/>
  <recv response="180" timeout="@ring_wait@" ontimeout="cancel_now"/>
  <label id="cancel_now"/>
""" + msg(f"""      CANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
      {FROM_UAC}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 CANCEL
      Max-Forwards: 70
      Content-Length: 0
""", ' retrans="500"') + """  <recv response="180" optional="true"/>
  <recv response="200" timeout="5000"/>
  <recv response="487" timeout="5000"/>
""" + uac_ack_failure(7) + '  <timewait milliseconds="@linger@"/>\n')

write("uac_rejected.xml", "sipp calls and is refused", f"""
sipp calls (UAC) with G.711 and expects the callee to refuse the call with @reject_status@
(template parameter: 486 busy, 603 decline, 404 unknown number ...), which it ACKs (RFC 3261
§17.1.1.3: same branch as the INVITE).
{COMMON_UAC}""",
      uac_invite(SDP_AUDIO.format(sess=1, ver=1), rtd=False) + """  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="@reject_status@" timeout="10000"/>
""" + uac_ack_failure(4) + '  <timewait milliseconds="@linger@"/>\n')

write("uac_bad_sdp.xml", "sipp calls with a malformed SDP offer", f"""
sipp calls (UAC) with an INVITE whose SDP is malformed (an o= line with one field, a port that is
not a number, an unknown address type). The callee must answer a final 4xx (400, or 488 if
it reads the SDP as nothing it can take), which sipp ACKs; the call never reaches on_call.
""",
      msg(f"""      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {FROM_UAC}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      {CONTACT}
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=broken
      m=image seventeen udptl t38
      c=IN IP9 nowhere
""", ' retrans="500"') + """  <recv response="100" optional="true"/>
  <recv response="488" optional="true" next="refused"/>
  <recv response="400" timeout="5000"/>
  <label id="refused"/>
""" + uac_ack_failure(4) + '  <timewait milliseconds="@linger@"/>\n')

# =============================== xmfax calls sipp ======================================
write("uas_g711_sipp_reinvites.xml", "xmfax calls; sipp answers G.711 and re-INVITEs to T.38", f"""
sipp answers (UAS) with G.711, then (after -d ms) re-INVITEs to T.38 itself, as a fax gateway
does when it hears CNG. Checks: the caller's 200 to the re-INVITE carries m=image udptl t38;
then either side hangs up.
{COMMON_UAS}""",
      uas_recv_invite(CHECK_AUDIO.format(v="a_m"))
      + msg(resp(180, "Ringing", tag=True, rr=True))
      + UAS_200_AUDIO
      + '  <recv request="ACK" timeout="10000"/>\n\n  <pause/>\n\n'
      + uas_in_dialog("INVITE", 100, SDP_T38.format(sess=7, ver=2))
      + recv_reinvite_ok() + uas_in_dialog("ACK", 100) + "\n" + uas_end())

write("uas_g711_await_reinvite.xml", "xmfax calls with G.711 and re-INVITEs to T.38 itself", f"""
sipp answers (UAS) with G.711 and waits for the caller's re-INVITE to T.38 (xmfax sending:
t38_switch_after), which it answers 200 with m=image; then either side hangs up.
Checks: the INVITE offers audio; the re-INVITE carries m=image udptl t38.
{COMMON_UAS}""",
      uas_recv_invite(CHECK_AUDIO.format(v="a_m"))
      + msg(resp(180, "Ringing", tag=True, rr=True))
      + UAS_200_AUDIO
      + '  <recv request="ACK" timeout="10000"/>\n\n' + recv_reinvite() + msg(resp(200, "OK", sdp=SDP_T38.format(sess=7, ver=2)), ' retrans="500"')
      + '  <recv request="ACK" timeout="10000"/>\n\n' + uas_end())

write("uas_t38.xml", "xmfax calls offering T.38; sipp answers T.38", f"""
sipp answers (UAS) an INVITE that offers T.38 (m=image, with or without audio) with 200
m=image directly (an audio m-line in the offer is answered with port 0, RFC 3264 §6).
Checks: the offer has m=image udptl t38. Then either side hangs up.
{COMMON_UAS}""",
      uas_recv_invite(CHECK_IMAGE.format(v="i_m"))
      + msg(resp(200, "OK", tag=True, rr=True, sdp=SDP_T38.format(sess=7, ver=1)), ' retrans="500"')
      + '  <recv request="ACK" timeout="10000"/>\n\n' + uas_end())

write("uas_g711_refuse_t38.xml", "xmfax calls; sipp refuses its T.38 re-INVITE with 488", f"""
sipp answers (UAS) with G.711 and answers the caller's re-INVITE to T.38 with 488 (a phone
without T.38), then waits for the caller's BYE in the same dialog (the call stayed up after the
488, RFC 3261 §14.1). Checks: the 488 is ACKed; the BYE comes (xmfax: reason t38_refused);
sipp sends its own BYE only after @bye_wait@ ms (then the test fails on the ladder).
{COMMON_UAS}""",
      uas_recv_invite(CHECK_AUDIO.format(v="a_m"))
      + UAS_200_AUDIO
      + '  <recv request="ACK" timeout="10000"/>\n\n' + recv_reinvite() + msg(resp(488, "Not Acceptable Here", extra='Warning: 304 sipp "Media type not available"'))
      + '  <recv request="ACK" timeout="10000"/>\n\n' + uas_end())

write("uas_glare.xml", "xmfax calls; both ends re-INVITE at once (glare)", f"""
sipp answers (UAS) with G.711; when the caller's re-INVITE to T.38 arrives, sipp sends its own
re-INVITE before answering (glare, RFC 3261 §14.1): the caller must answer sipp's 491 Request
Pending, and sipp answers the caller's re-INVITE 491 too. The caller owns the Call-ID, so it
retries after 2.1-4 s (§14.1): that INVITE is answered 200 with T.38; then either side hangs
up. The test reads the retry's delay from the -trace_msg times.
{COMMON_UAS}""",
      uas_recv_invite(CHECK_AUDIO.format(v="a_m"))
      + UAS_200_AUDIO
      + '  <recv request="ACK" timeout="10000"/>\n\n' + f"""  <recv request="INVITE" timeout="10000">
    <action>
      {CHECK_IMAGE.format(v="i_m")}
      <ereg regexp=".*" search_in="hdr" header="Via:" check_it="true" assign_to="x_via"/>
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="x_from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="x_to"/>
      <ereg regexp=".*" search_in="hdr" header="CSeq:" check_it="true" assign_to="x_cseq"/>
    </action>
  </recv>
""" + uas_in_dialog("INVITE", 100, SDP_T38.format(sess=7, ver=2))
      + """  <recv response="100" optional="true"/>
  <recv response="491" timeout="5000"/>
""" + UAS_ACK_FAILURE + msg("""      SIP/2.0 491 Request Pending
      Via: [$x_via]
      From: [$x_from]
      To: [$x_to]
      Call-ID: [call_id]
      CSeq: [$x_cseq]
      Content-Length: 0
""") + """  <recv request="ACK" timeout="5000"/>
  <recv request="INVITE" timeout="8000">
    <action>
      """ + CHECK_IMAGE.format(v="i_m2") + """
    </action>
  </recv>
""" + msg(resp(200, "OK", sdp=SDP_T38.format(sess=7, ver=3)), ' retrans="500"')
      + '  <recv request="ACK" timeout="10000"/>\n\n' + uas_end())

for status, hdr, auth_hdr in ((401, "WWW-Authenticate", "Authorization"),
                              (407, "Proxy-Authenticate", "Proxy-Authorization")):
    reason = "Unauthorized" if status == 401 else "Proxy Authentication Required"
    if status == 401:
        VERIFY = '<verifyauth assign_to="authvalid" username="[auth_user]" password="[auth_password]"/>'
        HOW = "which it checks (verifyauth with -key auth_user / auth_password: what the caller must use)"
    else:
        # INTEROP(sipp): verifyauth reads only Authorization, never Proxy-Authorization (sipp
        # 3.6): the fields are checked here, the digest itself by the test from the trace.
        VERIFY = "\n      ".join(
            f'<ereg regexp="{rx}" search_in="hdr" header="{auth_hdr}:" check_it="true" assign_to="{var}"/>'
            for rx, var in (('realm=\\"sipp\\.test\\"', "f_realm"), ('response=\\"[0-9a-f]{32}\\"', "f_response"),
                            ('nonce=\\"[0-9]+n[0-9]+x[0-9]+\\"', "f_nonce"), ('username=\\"@auth_user@\\"', "authvalid")))
        HOW = ("whose username, realm and response fields it checks (sipp cannot verify a "
               "Proxy-Authorization digest: the test recomputes it from the trace)")
    write(f"uas_challenge_{status}.xml", f"xmfax calls; sipp challenges with {status}", f"""
sipp answers (UAS) the first INVITE with {status} {reason} ({hdr}: Digest, MD5, qop=auth),
expects the ACK, then the INVITE again with {auth_hdr}, {HOW}, answers 200 G.711; then either side
hangs up. A wrong digest fails the scenario ("authvalid" test).
{COMMON_UAS}""",
          uas_recv_invite(CHECK_AUDIO.format(v="a_m"))
          + msg(resp(status, reason, tag=True,
                     extra=f'{hdr}: Digest realm="sipp.test", nonce="[pid]n[call_number]x[clock_tick]", algorithm=MD5, qop="auth"'))
          + '  <recv request="ACK" timeout="10000"/>\n\n'
          + f"""  <recv request="INVITE" timeout="10000">
    <action>
      <ereg regexp="Digest .*username=" search_in="hdr" header="{auth_hdr}:" check_it="true" assign_to="has_auth"/>
      {VERIFY}
      {GRAB_CONTACT}
      <ereg regexp=".*" search_in="hdr" header="From:" check_it="true" assign_to="from_hdr"/>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to_hdr"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good_auth"/>
""" + msg(resp(403, "Bad Credentials", tag=True)) + """  <recv request="ACK" timeout="5000"/>
  <nop hide="true" next="bad_end"/>

  <label id="good_auth"/>
""" + UAS_200_AUDIO
          + '  <recv request="ACK" timeout="10000"/>\n\n' + uas_end().replace('  <timewait milliseconds="@linger@"/>\n', '')
          + """  <nop hide="true" next="end"/>
  <label id="bad_end"/>
  <nop hide="true">
    <action>
      <error message="the caller's digest did not verify"/>
    </action>
  </nop>
  <label id="end"/>
  <timewait milliseconds="@linger@"/>
""")

write("uas_ring_await_cancel.xml", "xmfax calls; sipp rings until the caller CANCELs", f"""
sipp answers (UAS) the INVITE with 100 and 180 only and waits for the CANCEL (xmfax: the
caller gives up before an answer, RFC 3261 §9.1); answers it 200, the INVITE 487, and expects
the ACK for the 487.
{COMMON_UAS}""",
      uas_recv_invite(CHECK_AUDIO.format(v="a_m"),
                      '\n      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" check_it="true" assign_to="invite_cseq"/>')
      + msg(resp(100, "Trying"))
      + msg(resp(180, "Ringing", tag=True, rr=True))
      + """  <recv request="CANCEL" timeout="@cancel_wait@"/>
""" + msg(resp(200, "OK", tag=True)) + msg("""      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$invite_cseq] INVITE
      Content-Length: 0
""") + """  <recv request="ACK" timeout="5000"/>
  <timewait milliseconds="@linger@"/>
""")

write("uas_ignore_first_invite.xml", "xmfax calls; the first INVITE is lost", f"""
sipp answers (UAS) only the second INVITE it receives: the first is "lost" (sipp stays silent),
so the caller must retransmit it after T1 = 500 ms (RFC 3261 §17.1.1.2, Timer A). The test
reads the arrival times of both copies from the -trace_msg file. The retransmission is then
answered 200 G.711 and either side hangs up.
{COMMON_UAS}""",
      """  <recv request="INVITE" crlf="true" lost="100" timeout="300" ontimeout="retransmitted"/>
  <label id="retransmitted"/>
""" + uas_recv_invite(CHECK_AUDIO.format(v="a_m"))
      + UAS_200_AUDIO
      + '  <recv request="ACK" timeout="10000"/>\n\n' + uas_end())

write("uas_register.xml", "xmfax registers; sipp is its registrar", f"""
sipp acts as a registrar (UAS for REGISTER): every REGISTER is challenged 401 (Digest, MD5,
qop=auth) and the retry checked with verifyauth (-key auth_user / auth_password). The first registration is granted
for [expires] s (default 4): the UA must refresh it before it runs out (xmfax: at half), and
the refresh is challenged again with a new nonce. Checks: credentials verify, Contact and
To/From name the same AOR, the refresh comes within [expires] s.
Keys: [expires], [auth_user], [auth_password]; template parameter @refresh_wait@ (ms).
""",
      "".join(f"""  <recv request="REGISTER" crlf="true" timeout="{t}"/>
""" + msg(resp(401, "Unauthorized", tag=True,
               extra=f'WWW-Authenticate: Digest realm="sipp.test", nonce="[pid]r{k}n[clock_tick]", algorithm=MD5, qop="auth"'))
              + f"""  <recv request="REGISTER" timeout="5000">
    <action>
      <ereg regexp="Digest .*username=" search_in="hdr" header="Authorization:" check_it="true" assign_to="auth{k}"/>
      <verifyauth assign_to="ok{k}" username="[auth_user]" password="[auth_password]"/>
      <ereg regexp="&lt;[^&gt;]*&gt;" search_in="hdr" header="Contact:" check_it="true" assign_to="contact{k}"/>
    </action>
  </recv>
  <nop hide="true" test="ok{k}" next="granted{k}"/>
  <nop hide="true">
    <action>
      <error message="REGISTER {k}: the digest did not verify"/>
    </action>
  </nop>
  <label id="granted{k}"/>
""" + msg(resp(200, "OK", tag=True, extra="Contact: [$contact" + str(k) + "];expires=[expires]\nExpires: [expires]")
          .replace("      " + CONTACT + "\n", ""))
              for k, t in ((1, 10000), (2, "@refresh_wait@")))
      + '  <timewait milliseconds="@linger@"/>\n')

# =============================== partners: sipp against sipp ============================
os.makedirs(os.path.join(OUT, "partners"), exist_ok=True)
PARTNER = """A partner for validating the scenario {of} with sipp on both sides
(tests/interop/test_sip_sipp.py::test_scenario_against_sipp): it plays xmfax's part."""


def pwrite(fname, of, body):
    with open(os.path.join(OUT, "partners", fname), "w") as f:
        f.write(scenario(fname[:-4], PARTNER.format(of=of), body))


pwrite("uac_reinvite_gets_488.xml", "uas_g711_refuse_t38.xml",
       uac_invite(SDP_AUDIO.format(sess=1, ver=1)) + uac_wait_answer(CHECK_AUDIO.format(v="a_m"))
       + uac_in_dialog("ACK", 1) + uac_in_dialog("INVITE", 2, SDP_T38.format(sess=1, ver=2))
       + '  <recv response="100" optional="true"/>\n  <recv response="488" timeout="5000"/>\n'
       + uac_ack_failure(3, cseq=2, uri="[$contact]", to="To: [$to_hdr]") + uac_in_dialog("BYE", 3) + '  <recv response="200" timeout="5000"/>\n')

pwrite("uas_reinvite_gets_488.xml", "uac_g711_refuse_t38.xml",
       uas_recv_invite(CHECK_AUDIO.format(v="a_m"))
       + UAS_200_AUDIO
       + '  <recv request="ACK" timeout="10000"/>\n'
       + uas_in_dialog("INVITE", 100, SDP_T38.format(sess=7, ver=2))
       + '  <recv response="100" optional="true"/>\n  <recv response="488" timeout="5000"/>\n'
       + UAS_ACK_FAILURE + uas_in_dialog("BYE", 101) + '  <recv response="200" timeout="5000"/>\n')

pwrite("uac_answers_challenge.xml", "uas_challenge_401.xml / uas_challenge_407.xml (-au/-ap)",
       uac_invite(SDP_AUDIO.format(sess=1, ver=1), rtd=False)
       + """  <recv response="100" optional="true"/>
  <recv response="401" auth="true" optional="true" next="challenged">
    <action>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to_hdr"/>
    </action>
  </recv>
  <recv response="407" auth="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to_hdr"/>
    </action>
  </recv>
  <label id="challenged"/>
""" + uac_ack_failure(4, to="To: [$to_hdr]") + uac_invite(SDP_AUDIO.format(sess=1, ver=1), cseq=2, rtd=False).replace(
           "      Max-Forwards: 70\n      User-Agent", "      [authentication]\n      Max-Forwards: 70\n      User-Agent")
       + uac_wait_answer(CHECK_AUDIO.format(v="a_m")).replace(' rtd="setup"', "")
       + uac_in_dialog("ACK", 2) + uac_in_dialog("BYE", 3) + '  <recv response="200" timeout="5000"/>\n')

REG = lambda cseq, auth: msg(f"""      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[auth_user]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[auth_user]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      {CONTACT}
      {"[authentication]" if auth else ""}
      Expires: 3600
      Max-Forwards: 70
      Content-Length: 0
""", ' retrans="500"')
pwrite("uac_registers.xml", "uas_register.xml (-au/-ap and -key auth_user)",
       REG(1, False) + '  <recv response="401" auth="true" timeout="5000"/>\n'
       + REG(2, True) + '  <recv response="200" timeout="5000"/>\n  <pause/>\n'
       + REG(3, False) + '  <recv response="401" auth="true" timeout="5000"/>\n'
       + REG(4, True) + '  <recv response="200" timeout="5000"/>\n')

pwrite("uas_refuses.xml", "uac_rejected.xml and uac_bad_sdp.xml (@reject_status@)",
       """  <recv request="INVITE" crlf="true"/>
""" + msg(resp(100, "Trying")) + msg("""      SIP/2.0 @reject_status@ Refused
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
""") + '  <recv request="ACK" timeout="5000"/>\n  <timewait milliseconds="@linger@"/>\n')
