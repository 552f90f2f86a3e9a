"""Audio fax: the C fax modems (V.21, V.27 ter, V.29, V.17, the fax tones) and G.711.

The signal processing is C, in native/audio/, built into the extension ``xmfax._modems``
(native/build_modems.py); the modules here are thin typed wrappers over it, one per
modem family (``g711``, ``tones``, ``v21``, ...), numpy int16 samples at 8 kHz in and out,
in blocks of any size. Nothing here does I/O or reads a clock: time is counted in samples.
"""
