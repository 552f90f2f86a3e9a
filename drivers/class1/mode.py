"""The Class 1 driver's modem mode: one Enum, one table, one transition function.

Between signals the driver keeps the modem in command state; what the next AT command
looks like depends on little: whether ATD/ATA left the modem already in +FRH=3/+FTH=3,
whether the far end spoke last (our response then starts with a pause, T.30 §5 Notes 3
and 4), whether the next high-speed signal follows DCS/CTC (long training), and whether
the modem is still settling after ATZ/ATH0. :class:`Mode` names those cases and
:data:`TRANSITIONS` is every legal move; the driver changes its mode only through
:func:`transition`, which refuses any other move with :class:`IllegalModeTransition`.
"""
from __future__ import annotations

import enum

from xmfax.errors import DriverError


class Mode(enum.Enum):
    """What the modem is doing, as far as the next AT command is concerned.

    In a call the driver is in command state between signals; what it must know
    then is who spoke last (a response to the far end starts with a pause) and
    whether the next high-speed signal is long-trained (it follows DCS or CTC).
    The two are folded into four in-call modes: ``HEARD``/``SPOKE`` plus
    ``_RETRAIN``. Every change goes through :func:`transition` (:data:`TRANSITIONS`).
    """

    IDLE = "idle"                  # command state, no call (after init, recovery, ATH0)
    SETTLING = "settling"          # IDLE, but the modem refuses to dial for a while
    IN_FRH = "in-frh"              # ATD's CONNECT: the modem is already in +FRH=3
    IN_FTH = "in-fth"              # ATA's CONNECT: the modem is already in +FTH=3
    HEARD = "heard"                # in a call; the far end's signal came last
    HEARD_RETRAIN = "heard-retrain"
    SPOKE = "spoke"                # in a call; our signal (or +FTS silence) came last
    SPOKE_RETRAIN = "spoke-retrain"

    @property
    def heard_last(self) -> bool:
        return self in (Mode.HEARD, Mode.HEARD_RETRAIN)

    @property
    def long_train_next(self) -> bool:
        """The next high-speed signal follows DCS/CTC (or none was seen yet)."""
        return self not in (Mode.HEARD, Mode.SPOKE)


class Input(enum.Enum):
    RESET = "reset"                # init, recovery, ATH0 (no settle time)
    RESET_SETTLE = "reset-settle"  # ATZ/ATH0 after which the modem needs settle_after_reset_s
    SETTLED = "settled"            # the settle time has passed
    DIALLED = "dialled"            # ATD answered CONNECT
    ANSWERED = "answered"          # ATA answered CONNECT
    CALL = "call"                  # run_call starts on a line set up as it is
    RECEIVED = "received"          # a +FRH/+FRM answered (the far end's signal)
    SENT = "sent"                  # a +FTH/+FTM/+FTS ended (our signal or silence)
    RETRAIN_FRAME = "retrain-frame"  # DCS or CTC sent or received on V.21
    HIGH_SPEED = "high-speed"      # a +FTM/+FRM's training was chosen


class IllegalModeTransition(DriverError):
    """An input the modem's current mode does not allow (a driver bug)."""


_IN_CALL = (Mode.HEARD, Mode.HEARD_RETRAIN, Mode.SPOKE, Mode.SPOKE_RETRAIN)


def _build_transitions() -> dict[tuple[Mode, Input], Mode]:
    t: dict[tuple[Mode, Input], Mode] = {}
    for mode in Mode:
        # hanging up or resetting is legal from anywhere
        t[mode, Input.RESET] = Mode.IDLE
        t[mode, Input.RESET_SETTLE] = Mode.SETTLING
    t[Mode.SETTLING, Input.SETTLED] = Mode.IDLE
    t[Mode.IDLE, Input.DIALLED] = Mode.IN_FRH
    t[Mode.IDLE, Input.ANSWERED] = Mode.IN_FTH
    t[Mode.SETTLING, Input.ANSWERED] = Mode.IN_FTH   # answer() does not wait: the far end called
    # run_call on a line set up by other means: no pause, the first high-speed signal long-trained
    t[Mode.IDLE, Input.CALL] = Mode.SPOKE_RETRAIN
    t[Mode.SETTLING, Input.CALL] = Mode.SPOKE_RETRAIN
    for mode in (Mode.IN_FRH, Mode.IN_FTH, *_IN_CALL):
        t[mode, Input.CALL] = mode
    # ATD/ATA leave the modem in V.21 with no high-speed signal seen: long training next
    t[Mode.IN_FRH, Input.RECEIVED] = Mode.HEARD_RETRAIN
    t[Mode.IN_FTH, Input.RETRAIN_FRAME] = Mode.IN_FTH
    t[Mode.IN_FTH, Input.SENT] = Mode.SPOKE_RETRAIN
    for plain, retrain in ((Mode.HEARD, Mode.HEARD_RETRAIN), (Mode.SPOKE, Mode.SPOKE_RETRAIN)):
        for mode, long in ((plain, False), (retrain, True)):
            t[mode, Input.RECEIVED] = Mode.HEARD_RETRAIN if long else Mode.HEARD
            t[mode, Input.SENT] = Mode.SPOKE_RETRAIN if long else Mode.SPOKE
            t[mode, Input.RETRAIN_FRAME] = retrain
            t[mode, Input.HIGH_SPEED] = plain
    return t


TRANSITIONS: dict[tuple[Mode, Input], Mode] = _build_transitions()


def transition(mode: Mode, event: Input) -> Mode:
    """The mode after ``event`` in ``mode``; IllegalModeTransition if the table has
    no such move (e.g. a high-speed command while the modem is still in +FTH=3)."""
    try:
        return TRANSITIONS[mode, event]
    except KeyError:
        raise IllegalModeTransition(
            f"modem mode {mode.value!r} does not allow {event.value!r}") from None
