/* The C API of xmfax._modems: one #include per block (native/build_modems.py).
 * Each engineer adds the line for their own header; keep one per line. */
#ifndef XMFAX_MODEMS_H
#define XMFAX_MODEMS_H
#include "g711.h"
#include "hdlc.h"
#include "fsk.h"
#include "tones.h"
#include "dsp.h"
#include "v17.h"
#include "listen.h"
#endif
