"""Compiled loops over a text column's Arrow buffers (numba), for the CSV readers' numbers.

:func:`coded_decimals` reads, in one pass, what ``strip_code`` then the venue number parser
read in a dozen Polars passes, for the cells written the plain way (``0.01000000BTC``,
``-12.5``). Every other cell is left for those passes: a cell read here must never differ
from the same cell read there (see :func:`utl.venues.base.with_numbers`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)


# Every byte is made an int64 before it is compared with or added to a number: mixing the
# uint8 with integer literals made these loops ~5x slower (measured: 94 -> 21 ns a time cell).


@njit(cache=True, inline="always")
def trimmed(b, s, e):
    """``b[s:e]`` without the ASCII spaces around it, as (start, end)."""
    while s < e and b[s] == 32:
        s += 1
    while e > s and b[e - 1] == 32:
        e -= 1
    return s, e


@njit(cache=True, inline="always")
def digit_run(b, i, e):
    """The ASCII digits from ``i`` (before ``e``): where they end, their value (wrapping past
    18 digits: the caller refuses those by the count) and how many there are."""
    value = 0
    count = 0
    while i < e:
        d = np.int64(b[i]) - 48
        if d < 0 or d > 9:
            break
        value = value * 10 + d
        count += 1
        i += 1
    return i, value, count


@njit(cache=True, inline="always")
def marked_decimal(b, s, e):
    """``b[s:e]`` as ``[+-]?$?D+(.D+)?``, its whole part perhaps in thousands
    (``1,300.50``: 1 to 3 digits, then groups of 3 after commas), with at most 18 digits
    before the point and 18 after: (True, integer part, fraction in units of 1e-18), both
    signed; else (False, 0, 0). What the venue parser reads without its slow path
    (``utl.decimals.MARKED_NUMBER``) but for ``€``, ``£`` and 19 or 20 whole digits."""
    i = s
    negative = False
    if i < e and (b[i] == 45 or b[i] == 43):  # - +
        negative = b[i] == 45
        i += 1
    if i < e and b[i] == 36:  # $
        i += 1
    i, whole, digits = digit_run(b, i, e)
    if digits == 0:
        return False, 0, 0
    if i < e and b[i] == 44:  # ,
        if digits > 3:
            return False, 0, 0
        while i < e and b[i] == 44:
            j, group, count = digit_run(b, i + 1, e)
            if count != 3:
                return False, 0, 0
            whole = whole * 1000 + group  # may wrap past 18 digits: refused below by the count
            digits += 3
            i = j
    if digits > 18:
        return False, 0, 0
    fraction = 0
    if i < e and b[i] == 46:  # .
        i, fraction, places = digit_run(b, i + 1, e)
        if places == 0 or places > 18:
            return False, 0, 0
        fraction *= _POW10[18 - places]
    if i != e:
        return False, 0, 0
    if negative:
        return True, -whole, -fraction
    return True, whole, fraction


@njit(cache=True, nogil=True)
def coded_decimals(offsets, data, valid, code_offsets, code_data, code_valid, whole, fraction, exact):
    """Per cell ``r`` (bytes ``data[offsets[r]:offsets[r + 1]]``, null where ``valid[r]`` is
    false): the blanks around it dropped; then, when the cell ends with its code (bytes
    ``code_data[code_offsets[r]:code_offsets[r + 1]]``, none where ``code_valid[r]`` is false
    or ``code_offsets`` is empty), the code and the blanks before it; then, when the rest is a
    plain decimal (:func:`marked_decimal`), ``exact[r]`` is set and ``whole[r]``,
    ``fraction[r]`` hold its value. Blanks here are ASCII spaces only: a cell with any other
    blank is left for the slow path, which strips them as Polars does."""
    coded = len(code_offsets) > 0
    for r in range(len(offsets) - 1):
        if not valid[r]:
            continue
        s, e = trimmed(data, offsets[r], offsets[r + 1])
        if coded and code_valid[r]:
            cs, ce = code_offsets[r], code_offsets[r + 1]
            k = ce - cs
            if 0 < k <= e - s:
                same = True
                for j in range(k):
                    if data[e - k + j] != code_data[cs + j]:
                        same = False
                        break
                if same:
                    e -= k
                    while e > s and data[e - 1] == 32:
                        e -= 1
        ok, w, f = marked_decimal(data, s, e)
        if ok:
            exact[r], whole[r], fraction[r] = True, w, f


@njit(cache=True, inline="always")
def two_digits(b, i):
    """``b[i:i + 2]`` as a number, -1 unless both are ASCII digits."""
    x, y = np.int64(b[i]) - 48, np.int64(b[i + 1]) - 48
    if 0 <= x <= 9 and 0 <= y <= 9:
        return x * 10 + y
    return -1


@njit(cache=True, inline="always")
def days_from_civil(y, m, d):
    """Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's algorithm)."""
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(cache=True, nogil=True)
def shaped_times(offsets, data, valid, year_digits, separator, max_places, suffix, micros, exact):
    """Per cell (blanks around it dropped): ``YYYY-MM-DD`` (or ``YY-MM-DD``, years 00..68 as
    20YY), the byte ``separator``, ``HH:MM:SS``, then, where ``max_places`` > 0, perhaps ``.``
    and 1 to ``max_places`` digits (a fraction: its first 6 digits, as Polars truncates),
    then the bytes ``suffix``; a real date and time (month 1..12, the month's days, hour
    0..23, minute and second 0..59). Where it is, ``exact[r]`` is set and ``micros[r]``
    holds the naive time as microseconds since 1970. Anything else is left for Polars."""
    date_len = year_digits + 6
    for r in range(len(offsets) - 1):
        if not valid[r]:
            continue
        s, e = trimmed(data, offsets[r], offsets[r + 1])
        if e - s < date_len + 9 + len(suffix):
            continue
        if year_digits == 4:
            hi, lo = two_digits(data, s), two_digits(data, s + 2)
            if hi < 0 or lo < 0:
                continue
            year = hi * 100 + lo
            if year < 1900 or year > 2199:
                continue
        else:
            year = two_digits(data, s)
            if year < 0 or year > 68:
                continue
            year += 2000
        i = s + year_digits
        if data[i] != 45 or data[i + 3] != 45 or data[i + 6] != separator or data[i + 9] != 58 or data[i + 12] != 58:
            continue
        month, day = two_digits(data, i + 1), two_digits(data, i + 4)
        hour, minute, second = two_digits(data, i + 7), two_digits(data, i + 10), two_digits(data, i + 13)
        if month < 1 or month > 12 or day < 1 or hour < 0 or hour > 23 or minute < 0 or minute > 59 or second < 0 or second > 59:
            continue
        if month == 2:
            leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
            last = 29 if leap else 28
        elif month == 4 or month == 6 or month == 9 or month == 11:
            last = 30
        else:
            last = 31
        if day > last:
            continue
        i += 15
        # The fraction, if any, then exactly the suffix.
        end = e - len(suffix)
        same = True
        for j in range(len(suffix)):
            if data[end + j] != suffix[j]:
                same = False
                break
        if not same or end < i:
            continue
        fraction = 0
        if end > i:
            if max_places == 0 or data[i] != 46 or end - i - 1 > max_places or end - i - 1 < 1:
                continue
            places = 0
            digits = True
            for k in range(i + 1, end):
                d = np.int64(data[k]) - 48
                if d < 0 or d > 9:
                    digits = False
                    break
                if places < 6:
                    fraction = fraction * 10 + d
                    places += 1
            if not digits:
                continue
            while places < 6:
                fraction *= 10
                places += 1
        seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
        micros[r] = seconds * 1_000_000 + fraction
        exact[r] = True


_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)
_ONES = np.uint64(0x0101010101010101)
_S7, _S56 = np.uint64(7), np.uint64(56)


@njit(cache=True, inline="always")
def _others(word, pattern):
    """How many of ``word``'s 8 bytes differ from ``pattern``'s (one byte repeated): a byte of
    ``word ^ pattern`` is zero where they match, and the bit trick sets the high bit of each
    non-zero byte (no carry crosses bytes); the multiply adds those bits up in the top byte."""
    t = word ^ pattern
    y = (((t & _LOW7) + _LOW7) | t) & _HIGH
    return ((y >> _S7) * _ONES) >> _S56


@njit(cache=True, nogil=True)
def count_two(b, words, first, second):
    """How many bytes of ``b`` are ``first`` and how many are ``second`` (``words``: ``b`` as
    uint64, 8 bytes at a time), in one pass: ``b.count(first), b.count(second)``."""
    p1 = np.uint64(first) * _ONES
    p2 = np.uint64(second) * _ONES
    other1 = np.uint64(0)
    other2 = np.uint64(0)
    for k in range(len(words)):
        other1 += _others(words[k], p1)
        other2 += _others(words[k], p2)
    n1 = 8 * len(words) - np.int64(other1)
    n2 = 8 * len(words) - np.int64(other2)
    for i in range(8 * len(words), len(b)):
        x = np.int64(b[i])
        n1 += x == first
        n2 += x == second
    return n1, n2


_LOW32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_E18_LO = np.uint64(10**18 & 0xFFFFFFFF)
_E18_HI = np.uint64(10**18 >> 32)


@njit(cache=True, nogil=True, inline="always")
def _units(whole, fraction):
    """``whole * 10**18 + fraction`` (both of one sign, each below 10**18 in size) as the
    Decimal(38, 18) value's 128 bits, two's complement: (low, high). The product of 64 bits
    by 64 is taken in halves of 32: numba has no 128-bit integer."""
    negative = whole < 0 or fraction < 0
    a = np.uint64(-whole if whole < 0 else whole)
    f = np.uint64(-fraction if fraction < 0 else fraction)
    a_lo, a_hi = a & _LOW32, a >> _S32
    p0, p1, p2, p3 = a_lo * _E18_LO, a_lo * _E18_HI, a_hi * _E18_LO, a_hi * _E18_HI
    middle = (p0 >> _S32) + (p1 & _LOW32) + (p2 & _LOW32)
    lo = (p0 & _LOW32) | (middle << _S32)
    hi = p3 + (p1 >> _S32) + (p2 >> _S32) + (middle >> _S32)
    low = lo + f
    if low < lo:  # the carry
        hi += np.uint64(1)
    if negative:
        low = ~low + np.uint64(1)
        hi = ~hi + (np.uint64(1) if low == np.uint64(0) else np.uint64(0))
    return low, hi


@njit(cache=True, nogil=True)
def decimal_units(whole, fraction, exact, units):
    """:func:`_units` of ``whole`` and ``fraction`` per row where ``exact``, into ``units[r]``
    (low, high); zero elsewhere."""
    for r in range(len(whole)):
        if not exact[r]:
            continue
        units[r, 0], units[r, 1] = _units(whole[r], fraction[r])


@njit(cache=True, nogil=True, inline="always")
def _structural(c, separator, width, rows, cells, line_empty):
    """A separator or a line end (``c``) met outside quotes: ``(rows, cells)`` after it, rows
    -1 where the file is not regular (a blank line, a line of another width, a ``\r`` or
    BOM byte). Either starts a cell; only a line end leaves the line empty."""
    if c == separator:
        return rows, cells + 1
    if c == 10 and not line_empty and cells == width:
        return rows + 1, 1
    return -1, cells


@njit(cache=True, nogil=True, inline="always")
def _rows_with_last_line(rows, cells, width, line_empty):
    """The rows counted, with a last line that has no line end; -1 if it has another width."""
    if line_empty:
        return rows
    return rows + 1 if cells == width else -1


@njit(cache=True, nogil=True, inline="always")
def _past_quoted(b, i, n, separator, at_cell_start):
    """Where the plainly quoted cell opening at ``b[i]`` (a ``"``) ends: the byte after its
    closing quote, which must end the cell; -1 where the cell is not plain (the quote not at
    the cell's start, a line end, ``\r`` or BOM byte inside, no closing quote, text after it)."""
    if not at_cell_start:
        return -1
    i += 1
    while True:
        if i >= n:
            return -1
        q = np.int64(b[i])
        if q == 34:
            if i + 1 < n and np.int64(b[i + 1]) == 34:
                i += 2
                continue
            i += 1
            break
        if q == 10 or q == 13 or q == 0xEF:
            return -1
        i += 1
    if i < n and np.int64(b[i]) != separator and np.int64(b[i]) != 10:
        return -1
    return i


@njit(cache=True, inline="always")
def _has(word, pattern):
    """Whether a byte of ``word`` equals ``pattern``'s (one byte repeated): the classic test
    for a zero byte of ``word ^ pattern``, exact as to whether there is one."""
    t = word ^ pattern
    return ((t - _ONES) & ~t & _HIGH) != np.uint64(0)


@njit(cache=True, nogil=True)
def regular_rows_by_words(b, words, start, separator, width):
    """How many lines ``b[start:]`` holds when every one of them is a row of exactly ``width``
    cells written plainly: cells split by ``separator``, a quoted cell opening at its start
    and closing right before a separator or the line's end (``""`` inside it), no quoted line
    end, no ``\r``, no byte 0xEF (a BOM's first). Else -1: the file is read the careful way.
    A final line without its line end counts; a blank line does not fit.

    ``b`` is read 8 bytes at a time (``words``: ``b`` as uint64, ``b`` 8-byte aligned,
    little-endian) wherever a word holds no line end, quote, ``\r`` or 0xEF: its separators
    are counted at once, its last byte tells whether a cell starts after it. Any other word,
    and the bytes up to the next word's start, are read one at a time (~3x faster on export
    text than a byte at a time throughout, the reference the tests hold it to)."""
    n = len(b)
    special = np.zeros(256, dtype=np.uint8)
    special[34] = 1
    special[10] = 1
    special[13] = 1
    special[0xEF] = 1
    special[separator] = 1
    line_end, quote, carriage, bom = np.uint64(10) * _ONES, np.uint64(34) * _ONES, np.uint64(13) * _ONES, np.uint64(0xEF) * _ONES
    split = np.uint64(separator) * _ONES
    last = np.uint64(separator)
    rows = 0
    cells = 1
    at_cell_start = True
    line_empty = True
    i = start
    stop = 8 * len(words)
    while i < n:
        if i & 7 == 0 and i < stop:
            k = i >> 3
            while k < len(words):
                w = words[k]
                if _has(w, line_end) or _has(w, quote) or _has(w, carriage) or _has(w, bom):
                    break
                cells += 8 - np.int64(_others(w, split))
                at_cell_start = (w >> _S56) == last
                line_empty = False
                k += 1
            i = k << 3
            if i >= n:
                break
            # This word holds a byte that is not plain: read up to the next word byte by byte.
            edge = min(i + 8, n)
        else:
            edge = min((i | 7) + 1, n)
        while i < edge:
            if special[b[i]] == 0:
                at_cell_start = False
                line_empty = False
                i += 1
                continue
            c = np.int64(b[i])
            if c == 34:  # "
                i = _past_quoted(b, i, n, separator, at_cell_start)
                if i < 0:
                    return -1
                at_cell_start = False
                line_empty = False
                break  # i may now be past edge: back to the word test
            rows, cells = _structural(c, separator, width, rows, cells, line_empty)
            if rows < 0:
                return -1
            at_cell_start = True
            line_empty = c == 10
            i += 1
    return _rows_with_last_line(rows, cells, width, line_empty)


@njit(cache=True, nogil=True)
def ascii_only(words, tail):
    """Whether no byte of ``words`` (uint64, 8 bytes each) or ``tail`` (uint8) is above 127."""
    seen = np.uint64(0)
    for k in range(len(words)):
        seen |= words[k]
    if seen & _HIGH:
        return False
    for i in range(len(tail)):
        if tail[i] > 127:
            return False
    return True


@njit(cache=True, nogil=True)
def second_texts(micros, valid, text, exact):
    """Per time ``r`` (microseconds since 1970, UTC) where ``valid[r]``: its whole second as
    ``YYYY-MM-DDTHH:MM:SSZ`` into ``text[20 r : 20 r + 20]``, and ``exact[r]`` set; what
    ``strftime("%Y-%m-%dT%H:%M:%SZ")`` writes (the second floored). Years outside
    1000..9999 are left: strftime writes them in another width."""
    date = np.zeros(10, dtype=np.uint8)
    date_of = np.int64(-(2**62))  # the day ``date`` holds: rows in time order share it
    date_ok = False
    for r in range(len(micros)):
        if not valid[r]:
            continue
        seconds = micros[r] // 1000000  # floored, as strftime reads a time before 1970 too
        days = seconds // 86400
        of_day = seconds - days * 86400
        if days != date_of:
            date_of = days
            # The civil date of a day count (H. Hinnant's civil_from_days), on 400-year eras.
            z = days + 719468
            era = z // 146097
            of_era = z - era * 146097
            year_of_era = (of_era - of_era // 1460 + of_era // 36524 - of_era // 146096) // 365
            year = year_of_era + era * 400
            day_of_year = of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
            shifted_month = (5 * day_of_year + 2) // 153
            day = day_of_year - (153 * shifted_month + 2) // 5 + 1
            month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
            if month <= 2:
                year += 1
            date_ok = 1000 <= year <= 9999
            date[0] = 48 + year // 1000
            date[1] = 48 + year // 100 % 10
            date[2] = 48 + year // 10 % 10
            date[3] = 48 + year % 10
            date[4] = 45  # -
            date[5] = 48 + month // 10
            date[6] = 48 + month % 10
            date[7] = 45
            date[8] = 48 + day // 10
            date[9] = 48 + day % 10
        if not date_ok:
            continue
        hour = of_day // 3600
        minute = (of_day - hour * 3600) // 60
        second = of_day - hour * 3600 - minute * 60
        at = 20 * r
        for k in range(10):
            text[at + k] = date[k]
        text[at + 10] = 84  # T
        text[at + 11] = 48 + hour // 10
        text[at + 12] = 48 + hour % 10
        text[at + 13] = 58  # :
        text[at + 14] = 48 + minute // 10
        text[at + 15] = 48 + minute % 10
        text[at + 16] = 58
        text[at + 17] = 48 + second // 10
        text[at + 18] = 48 + second % 10
        text[at + 19] = 90  # Z
        exact[r] = True


@njit(cache=True, nogil=True)
def glued_codes(offsets, data, valid, code_offsets, code_data, plain):
    """Per cell ``r``: where it is ASCII with no blank but spaces, and once its spaces around
    are dropped, digits, ``.,+-`` and spaces followed by letters, those letters (the code glued
    to the number: ``0.1BNB`` -> ``BNB``, none for ``12``) go into ``code_data`` at
    ``code_offsets[r]:code_offsets[r + 1]`` and ``plain[r]`` is set; a null cell has no code and
    is plain. Every other cell (an exponent, another blank, junk) gets no code here and is left
    for the Polars passes (``utl.venues.base._trailing_codes``)."""
    at = 0
    for r in range(len(offsets) - 1):
        code_offsets[r] = at
        if not valid[r]:
            plain[r] = True
            continue
        s, e = offsets[r], offsets[r + 1]
        ascii_spaces = True
        for i in range(s, e):
            c = np.int64(data[i])
            if c >= 128 or (9 <= c <= 13):  # Polars strips these blanks as well: left
                ascii_spaces = False
                break
        if not ascii_spaces:
            continue
        s, e = trimmed(data, s, e)
        k = e
        while k > s:
            c = np.int64(data[k - 1]) | 32  # lower case
            if c < 97 or c > 122:
                break
            k -= 1
        number = True
        for i in range(s, k):
            c = np.int64(data[i])
            if not ((48 <= c <= 57) or c == 46 or c == 44 or c == 43 or c == 45 or c == 32):
                number = False
                break
        if not number:
            continue
        for i in range(k, e):
            code_data[at] = data[i]
            at += 1
        plain[r] = True
    code_offsets[len(offsets) - 1] = at


@njit(cache=True, nogil=True)
def note_tokens(offsets, data, rows, words, at, slashed, bounds, exact):
    """Per cell ``r = rows[m]``: when it is printable ASCII (bytes 32..126) and, split at
    single spaces, exactly ``len(at) - 1`` tokens, none empty, each token ``k`` that ``words``
    names (bytes ``at[k]:at[k + 1]``, none for a group) spelling one of those words (``|``
    between them), the token ``slashed[0]`` holding exactly one ``-`` and the token
    ``slashed[1]`` exactly one ``/``, neither at its ends (-1: no such token): the tokens
    ``words`` does not name are the groups of a regex of ``(\\S+)`` between those words, such
    a token split at its ``-`` or ``/`` giving two; their byte bounds go into ``bounds[m]``
    (start, end, start, end...) and ``exact[m]`` is set. Any other cell is left: a tab or
    other blank, a non-ASCII byte, a double space... are for the regex to read."""
    tokens = len(at) - 1
    starts = np.zeros(tokens, dtype=np.int64)
    ends = np.zeros(tokens, dtype=np.int64)
    for m in range(len(rows)):
        r = rows[m]
        s, e = offsets[r], offsets[r + 1]
        count = 0
        start = s
        ok = True
        for i in range(s, e + 1):
            c = np.int64(data[i]) if i < e else 32
            if c == 32:
                if i == start or count == tokens:  # an empty token, or one too many
                    ok = False
                    break
                starts[count] = start
                ends[count] = i
                count += 1
                start = i + 1
            elif c < 33 or c > 126:
                ok = False
                break
        if not ok or count != tokens:
            continue
        g = 0
        for k in range(tokens):
            ws, we = at[k], at[k + 1]
            if we > ws:  # a word of the note: any of its alternatives, spelled exactly
                matched = False
                a = ws
                while a <= we and not matched:
                    b = a
                    while b < we and words[b] != 124:  # |
                        b += 1
                    if b - a == ends[k] - starts[k]:
                        same = True
                        for j in range(b - a):
                            if data[starts[k] + j] != words[a + j]:
                                same = False
                                break
                        matched = same
                    a = b + 1
                if not matched:
                    ok = False
                    break
                continue
            if k == slashed[0] or k == slashed[1]:
                mark = 45 if k == slashed[0] else 47  # - or /
                where = -1
                for i in range(starts[k], ends[k]):
                    if np.int64(data[i]) == mark:
                        if where >= 0:
                            where = -2
                            break
                        where = i
                if where <= starts[k] or where >= ends[k] - 1:
                    ok = False
                    break
                bounds[m, 2 * g] = starts[k]
                bounds[m, 2 * g + 1] = where
                bounds[m, 2 * g + 2] = where + 1
                bounds[m, 2 * g + 3] = ends[k]
                g += 2
            else:
                bounds[m, 2 * g] = starts[k]
                bounds[m, 2 * g + 1] = ends[k]
                g += 1
        if ok:
            exact[m] = True


@njit(cache=True, nogil=True)
def field_offsets(bounds, rows, exact, wanted, out_offsets):
    """Arrow offsets, for each group ``g = wanted[k]``, of the texts ``bounds[m, 2 g]:bounds[m,
    2 g + 1]`` of the rows ``rows[m]`` (increasing) where ``exact[m]``, empty in the other of
    the ``out_offsets.shape[1] - 1`` rows; group after group in one buffer: group ``wanted[k]``'s
    offsets are ``out_offsets[k]``. Returns the buffer's size."""
    groups = len(wanted)
    n = out_offsets.shape[1] - 1
    at = np.zeros(groups, dtype=np.int64)
    for m in range(len(rows)):
        if exact[m]:
            for k in range(groups):
                g = wanted[k]
                at[k] += bounds[m, 2 * g + 1] - bounds[m, 2 * g]
    total = 0
    for k in range(groups):
        size = at[k]
        at[k] = total
        total += size
    m = 0
    for r in range(n):
        for k in range(groups):
            out_offsets[k, r] = at[k]
        if m < len(rows) and rows[m] == r:
            if exact[m]:
                for k in range(groups):
                    g = wanted[k]
                    at[k] += bounds[m, 2 * g + 1] - bounds[m, 2 * g]
            m += 1
    for k in range(groups):
        out_offsets[k, n] = at[k]
    return total


@njit(cache=True, nogil=True)
def field_bytes(data, bounds, rows, exact, wanted, out_offsets, out_data):
    """The bytes of :func:`field_offsets`' texts into ``out_data``."""
    for m in range(len(rows)):
        if exact[m]:
            r = rows[m]
            for k in range(len(wanted)):
                g = wanted[k]
                at = out_offsets[k, r]
                s = bounds[m, 2 * g]
                for j in range(bounds[m, 2 * g + 1] - s):
                    out_data[at + j] = data[s + j]


@njit(cache=True, nogil=True)
def decimal_cells(offsets, data, valid, units, exact):
    """:func:`coded_decimals` (no codes) then :func:`decimal_units` in one pass: per cell ``r``
    (null where ``valid[r]`` is false), its ASCII spaces around dropped, a plain decimal
    (:func:`marked_decimal`) sets ``exact[r]`` and its Decimal(38, 18) value's 128 bits into
    ``units[r]`` (low, high); every other cell is left (``units[r]`` untouched)."""
    for r in range(len(offsets) - 1):
        if not valid[r]:
            continue
        s, e = trimmed(data, offsets[r], offsets[r + 1])
        ok, w, f = marked_decimal(data, s, e)
        if not ok:
            continue
        exact[r] = True
        units[r, 0], units[r, 1] = _units(w, f)


@njit(cache=True, nogil=True)
def edge_blanks(offsets, data, valid):
    """Whether a cell may start or end with a blank: its first or last byte is ASCII
    whitespace or a control byte (<= 32), or not ASCII (>= 127: it may begin or end a
    Unicode blank such as U+00A0). False means ``str.strip_chars()`` leaves every cell as is."""
    for i in range(len(offsets) - 1):
        s, e = offsets[i], offsets[i + 1]
        if not valid[i] or e <= s:
            continue
        first, last = np.int64(data[s]), np.int64(data[e - 1])
        if first <= 32 or first >= 127 or last <= 32 or last >= 127:
            return True
    return False


@njit(cache=True, nogil=True)
def line_ends(words, tail):
    """How many bytes of ``words`` (uint64, 8 bytes each) and ``tail`` (uint8) are ``\\n``."""
    pattern = np.uint64(10) * _ONES
    other = np.uint64(0)
    for k in range(len(words)):
        other += _others(words[k], pattern)
    count = 8 * len(words) - np.int64(other)
    for i in range(len(tail)):
        count += tail[i] == 10
    return count


@njit(cache=True, nogil=True)
def _eight(b, words, p):
    """The 8 bytes from ``b[p]`` as a little-endian word, zero past ``b``'s end (``words``:
    ``b`` as uint64): two aligned words shifted together where they reach."""
    q = p >> 3
    r = np.uint64(8 * (p & 7))
    if q + 1 < len(words):
        if r == 0:
            return words[q]
        return (words[q] >> r) | (words[q + 1] << (np.uint64(64) - r))
    w = np.uint64(0)
    for j in range(8):
        if p + j < len(b):
            w |= np.uint64(b[p + j]) << np.uint64(8 * j)
    return w


@njit(cache=True, nogil=True)
def _low_bytes(w, count):
    """``w``'s lowest ``count`` bytes (0..8), the others zero."""
    if count >= 8:
        return w
    return w & ((np.uint64(1) << np.uint64(8 * count)) - np.uint64(1))


@njit(cache=True, nogil=True)
def _view(views, k, row, b, words, s, e, data, at):
    """Cell ``b[s:e]`` as the Arrow string view ``row`` of column ``k`` (``views``: uint64
    ``(columns, rows, 2)``, little-endian): its length, then up to 12 bytes inline (zero
    after them), or its first 4 bytes, buffer 0 and its offset in buffer 0. That buffer is
    ``b`` itself where ``data`` is empty, else ``data``, into which the bytes are copied at
    ``at``. Returns where the next copy goes."""
    length = e - s
    head = _eight(b, words, s)
    if length <= 12:
        first = _low_bytes(head, length)
        rest = _low_bytes(_eight(b, words, s + 8), length - 8) if length > 8 else np.uint64(0)
        views[k, row, 0] = np.uint64(length) | (first << _S32)
        views[k, row, 1] = (first >> _S32) | (rest << _S32)
        return at
    views[k, row, 0] = np.uint64(length) | (head << _S32)
    if len(data) == 0:
        views[k, row, 1] = np.uint64(s) << _S32
        return at
    for j in range(length):
        data[at + j] = b[s + j]
    views[k, row, 1] = np.uint64(at) << _S32
    return at + length


_POSITION = np.uint64(0x0001020304050607)  # times one byte's lowest bit: that byte's index in the top byte


@njit(cache=True, inline="always")
def _equal_bytes(word, pattern):
    """The high bit of each byte of ``word`` equal to ``pattern``'s byte (one byte repeated),
    exactly (no borrow crosses bytes, unlike :func:`_has`)."""
    t = word ^ pattern
    return ~((((t & _LOW7) + _LOW7) | t)) & _HIGH


@njit(cache=True, nogil=True)
def regular_views(b, words, start, separator, width, slot, views, data):
    """:func:`regular_rows_by_words` (the same rows, the same files taken), and more
    strictly: every byte ASCII, no ``""`` inside a quoted cell. Each cell ``c`` of a row
    whose ``slot[c]`` is not -1 is written as the Arrow string view of its text as Polars
    reads it (a quoted cell without its quotes) into column ``slot[c]`` (:func:`_view`).
    Returns (rows, bytes copied into ``data``); rows -1 where the file is not taken (the
    caller reads it the other way), or where it has more rows than ``views`` holds.

    ``b`` is read 8 bytes at a time (``words``: ``b`` as uint64, from its start, 8-byte
    aligned, little-endian; the bytes past them are read as one more word), and only its
    bytes that are a separator, line end, quote, ``\r`` or not ASCII are looked at one by one."""
    n = len(b)
    cap = views.shape[1]
    split, line_end = np.uint64(separator) * _ONES, np.uint64(10) * _ONES
    quote, carriage = np.uint64(34) * _ONES, np.uint64(13) * _ONES
    copy = len(data)
    rows = 0
    at = 0
    cell = 0
    cell_start = start  # where the cell being read starts
    quoted = False  # the cell opened with a quote
    inside = False  # ... and it has not closed yet
    closed = 0  # where its closing quote is
    k = start >> 3
    last = (n + 7) >> 3
    while k < last:
        if k < len(words):
            w = words[k]
        else:  # the bytes past the words, padded with a byte that is not special
            w = np.uint64(0)
            for j in range(8):
                c = np.uint64(b[8 * k + j]) if 8 * k + j < n else np.uint64(97)
                w |= c << np.uint64(8 * j)
        m = _equal_bytes(w, quote) | _equal_bytes(w, line_end) | _equal_bytes(w, carriage) | (w & _HIGH)
        if not inside:
            m |= _equal_bytes(w, split)
        if k == start >> 3:  # the bytes before the start are not read
            m &= ~np.uint64(0) << np.uint64(8 * (start & 7))
        while m:
            low = m & (~m + np.uint64(1))
            m ^= low
            p = 8 * k + np.int64(((low >> _S7) * _POSITION) >> _S56)
            c = np.int64(b[p])
            if c >= 128 or c == 13:
                return -1, at
            if inside:
                if c == 10:  # a quoted line end
                    return -1, at
                if c == 34:
                    # It closes the cell: a separator or the line's end must follow (not a
                    # second quote: an escaped one is left to Polars' reader).
                    if p + 1 < n and np.int64(b[p + 1]) != separator and np.int64(b[p + 1]) != 10:
                        return -1, at
                    inside = False
                    closed = p
                    m |= _equal_bytes(w, split) & (~np.uint64(0) << np.uint64(8 * (p - 8 * k)))  # the separators after it
                continue  # a separator inside the quotes is text
            if c == 34:  # opens a quoted cell, at its start only
                if p != cell_start:
                    return -1, at
                quoted = True
                inside = True
                m &= ~_equal_bytes(w, split)  # separators inside the quotes are text
                continue
            # A separator or a line end: the cell ends.
            if c == 10 and cell == 0 and p == cell_start:  # a blank line
                return -1, at
            if cell >= width or rows >= cap:
                return -1, at
            s = slot[cell]
            if s >= 0:
                # The view, as _view writes it, written here: a call per cell, which passes
                # the arrays (their reference counts), takes ~3x the whole pass's time.
                first = cell_start + 1 if quoted else cell_start
                length = (closed if quoted else p) - first
                q = first >> 3
                if q + 2 < len(words) and (length <= 12 or copy == 0):
                    r = np.uint64(8 * (first & 7))
                    if r == 0:
                        head, tail = words[q], words[q + 1]
                    else:
                        head = (words[q] >> r) | (words[q + 1] << (np.uint64(64) - r))
                        tail = (words[q + 1] >> r) | (words[q + 2] << (np.uint64(64) - r))
                    if length <= 12:
                        if length < 8:
                            head &= (np.uint64(1) << np.uint64(8 * length)) - np.uint64(1)
                        tail = tail & ((np.uint64(1) << np.uint64(8 * (length - 8))) - np.uint64(1)) if length > 8 else np.uint64(0)
                        views[s, rows, 0] = np.uint64(length) | (head << _S32)
                        views[s, rows, 1] = (head >> _S32) | (tail << _S32)
                    else:
                        views[s, rows, 0] = np.uint64(length) | (head << _S32)
                        views[s, rows, 1] = np.uint64(first) << _S32
                else:
                    at = _view(views, s, rows, b, words, first, first + length, data, at)
            cell += 1
            if c == 10:
                if cell != width:
                    return -1, at
                rows += 1
                cell = 0
            cell_start = p + 1
            quoted = False
        k += 1
    if inside:  # never closed
        return -1, at
    if cell == 0 and cell_start >= n:  # the file ends with a line end
        return rows, at
    # The last line, without its line end (its last cell perhaps empty).
    if cell != width - 1 or rows >= cap:
        return -1, at
    s = slot[cell]
    if s >= 0:
        if quoted:
            at = _view(views, s, rows, b, words, cell_start + 1, closed, data, at)
        else:
            at = _view(views, s, rows, b, words, cell_start, n, data, at)
    return rows + 1, at
