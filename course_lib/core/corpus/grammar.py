"""A voice-command grammar for a smart home, a car and a phone (chapter 1).

Each template is a sequence of slots; `sample_sentence` fills them at random.
The vocabulary is about 230 words, and the number of distinct sentences is in the
billions, so random test sentences are almost never seen in training. We still
remove every test/dev sentence from the training set, to be sure.
"""

from __future__ import annotations

import functools
import random

DIGITS = "zero one two three four five six seven eight nine".split()
TEENS = ("ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
         "eighteen nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()

SLOTS: dict[str, list[str]] = {
    "room": ["kitchen", "living room", "bedroom", "bathroom", "garage", "hallway",
             "office", "dining room", "basement", "attic", "garden", "nursery",
             "guest room", "laundry room", "porch", "study"],
    "device": ["lights", "lamp", "fan", "heater", "air conditioner", "television",
               "speaker", "radio", "oven", "kettle", "coffee maker", "dishwasher",
               "washing machine", "dryer", "vacuum", "blinds", "curtains",
               "sprinklers", "alarm", "camera", "doorbell", "computer", "printer",
               "router", "fridge", "microwave", "projector", "humidifier"],
    "on_off": ["turn on", "turn off", "switch on", "switch off", "start", "stop",
               "pause", "resume", "open", "close", "lock", "unlock", "check"],
    "level": ["brightness", "volume", "temperature", "speed", "fan speed", "bass"],
    "updown": ["increase", "decrease", "raise", "lower", "set", "reduce"],
    "unit": ["percent", "degrees", "minutes", "seconds", "hours", "points"],
    "time_unit": ["seconds", "minutes", "hours"],
    "media_verb": ["play", "shuffle", "queue", "skip", "repeat", "find"],
    "media": ["some jazz", "the news", "my playlist", "the next song",
              "the previous track", "classical music", "a podcast",
              "the weather report", "rock music", "the latest episode",
              "relaxing sounds", "my favorite album", "the radio", "an audiobook"],
    "contact": ["mom", "dad", "alice", "bob", "charlie", "david", "emma", "frank",
                "grace", "henry", "isabel", "jack", "karen", "leo", "maria", "nina",
                "oscar", "peter", "rachel", "sophie", "tom", "victor", "william",
                "the office", "the doctor", "my sister", "my brother", "grandma"],
    "call_verb": ["call", "dial", "text", "message", "video call", "ring"],
    "car_verb": ["navigate to", "drive to", "find a route to", "show me the way to",
                 "how far is", "take me to"],
    "place": ["the airport", "the station", "home", "work", "the nearest gas station",
              "the hospital", "the city center", "the beach", "the supermarket",
              "the school", "a parking lot", "the museum", "the bank", "the park",
              "the library", "a charging station"],
    "car_thing": ["windows", "sunroof", "trunk", "seat heating", "wipers",
                  "headlights", "cruise control", "defrost", "mirrors", "doors"],
    "day": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
            "sunday", "today", "tomorrow", "tonight"],
    "event": ["a meeting", "a dentist appointment", "lunch", "a workout",
              "the school run", "a haircut", "dinner", "yoga class", "a call"],
    "query": ["what is the weather", "what time is it", "what is on my calendar",
              "how is the traffic", "read my messages", "what is the battery level",
              "is the front door locked", "who is at the door", "tell me a joke",
              "what is the date"],
    "please": ["please", "", "", "", "now", "right now"],
    "wake": ["", "", "", "hey computer", "okay car", "hello phone"],
}


def number(rng: random.Random, low: int = 1, high: int = 99) -> str:
    """A number between low and high, spelled out in words (as eSpeak says it)."""
    n = rng.randint(low, high)
    if n < 10:
        return DIGITS[n]
    if n < 20:
        return TEENS[n - 10]
    tens, ones = divmod(n, 10)
    return TENS[tens - 2] + ("" if ones == 0 else " " + DIGITS[ones])


def digit_string(rng: random.Random, length: int) -> str:
    """A phone-number-like digit string, one word per digit."""
    return " ".join(rng.choice(DIGITS) for _ in range(length))


def _s(rng: random.Random, slot: str) -> str:
    return rng.choice(SLOTS[slot])


# Each template is a function of the random generator; the weights say how often.
TEMPLATES = [
    (4, lambda r: f"{_s(r, 'on_off')} the {_s(r, 'room')} {_s(r, 'device')}"),
    (3, lambda r: f"{_s(r, 'on_off')} the {_s(r, 'device')} in the {_s(r, 'room')}"),
    (3, lambda r: f"{_s(r, 'updown')} the {_s(r, 'level')} to {number(r)} "
                  f"{_s(r, 'unit')}"),
    (2, lambda r: f"{_s(r, 'updown')} the {_s(r, 'room')} {_s(r, 'level')} by "
                  f"{number(r, 1, 20)}"),
    (3, lambda r: f"set a timer for {number(r)} {_s(r, 'time_unit')}"),
    (2, lambda r: f"remind me about {_s(r, 'event')} {_s(r, 'day')} at "
                  f"{number(r, 1, 12)}"),
    (3, lambda r: f"{_s(r, 'media_verb')} {_s(r, 'media')} in the {_s(r, 'room')}"),
    (3, lambda r: f"{_s(r, 'call_verb')} {_s(r, 'contact')}"),
    (3, lambda r: f"dial {digit_string(r, r.choice([3, 4, 5, 7]))}"),
    (3, lambda r: f"{_s(r, 'car_verb')} {_s(r, 'place')}"),
    (2, lambda r: f"{_s(r, 'on_off')} the {_s(r, 'car_thing')}"),
    (2, lambda r: f"schedule {_s(r, 'event')} with {_s(r, 'contact')} "
                  f"{_s(r, 'day')}"),
    (2, lambda r: _s(r, "query")),
    (1, lambda r: f"send {_s(r, 'contact')} the code "
                  f"{digit_string(r, r.choice([4, 6]))}"),
]


def sample_sentence(rng: random.Random) -> str:
    """One random command, e.g. 'hey computer turn off the kitchen lights please'."""
    weights = [w for w, _ in TEMPLATES]
    template = rng.choices([t for _, t in TEMPLATES], weights=weights)[0]
    words = [_s(rng, "wake"), template(rng), _s(rng, "please")]
    return " ".join(w for w in words if w)


def vocabulary() -> list[str]:
    """Every word the grammar can produce, sorted."""
    return list(_vocabulary())


@functools.cache
def _vocabulary() -> tuple[str, ...]:
    """`vocabulary`, built once: the recognizer snaps to it on every call."""
    words: set[str] = set(DIGITS + TEENS + TENS)
    for values in SLOTS.values():
        for v in values:
            words.update(v.split())
    fixed = ("the in to by set a timer for remind me about at with schedule dial "
             "send code").split()
    words.update(fixed)
    return tuple(sorted(words))


# ----------------------------------------------------------------------------------
# Text kinds of corpus v2 (spec §3.1): besides the command templates, isolated words,
# free word strings and digit strings, so that a model learns the sounds of the
# words rather than the templates' order.

KINDS = ("command", "word", "string", "digits")
# Test and dev report WER per group: the templates, and everything else.
REPORT_GROUP = {"command": "command", "word": "words", "string": "words",
                "digits": "words"}


def isolated_word(rng: random.Random) -> str:
    """One vocabulary word alone; digits and numbers are half of them."""
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(DIGITS)
    if roll < 0.5:
        return number(rng, 10, 99)
    return rng.choice(vocabulary())


def word_string(rng: random.Random, low: int = 1, high: int = 6) -> str:
    """`low` to `high` vocabulary words in any order (no grammar at all)."""
    words = vocabulary()
    return " ".join(rng.choice(words) for _ in range(rng.randint(low, high)))


def sample_text(rng: random.Random, kind: str) -> str:
    """One utterance's text of a given kind (`KINDS`)."""
    if kind == "command":
        return sample_sentence(rng)
    if kind == "word":
        return isolated_word(rng)
    if kind == "string":
        return word_string(rng)
    if kind == "digits":
        return digit_string(rng, rng.randint(1, 12))
    raise ValueError(f"unknown text kind {kind!r}; expected one of {KINDS}")
