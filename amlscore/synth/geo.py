"""Places: provinces, countries, IP address blocks and how they are written out.

Regions are ``CN-xx`` province codes (GB/T 2260 prefixes, as in the contract's ``CN-62``) for
China and ISO 3166-1 alpha-2 country codes abroad (used as ``terminal_region`` of a terminal
abroad). Every place is an index into :data:`REGIONS`; every country an index into
:data:`COUNTRIES`, so the generator works on small integers and formats strings once at the end.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from amlscore.contract.countries import ISO_ALPHA2_CODES

# Provinces with a weight ~ share of the bank's customers (a national bank, weighted by economy).
PROVINCES: tuple[tuple[str, float], ...] = (
    ("CN-44", 12.0), ("CN-32", 8.5), ("CN-33", 7.5), ("CN-37", 7.0), ("CN-11", 6.0), ("CN-31", 6.0),
    ("CN-41", 5.0), ("CN-51", 5.0), ("CN-42", 4.2), ("CN-35", 4.0), ("CN-43", 3.8), ("CN-34", 3.6),
    ("CN-13", 3.4), ("CN-50", 2.8), ("CN-61", 2.6), ("CN-12", 2.2), ("CN-21", 2.2), ("CN-53", 2.0),
    ("CN-45", 2.0), ("CN-36", 2.0), ("CN-14", 1.6), ("CN-52", 1.5), ("CN-15", 1.4), ("CN-22", 1.2),
    ("CN-23", 1.2), ("CN-62", 1.2), ("CN-65", 1.0), ("CN-46", 0.6), ("CN-64", 0.4), ("CN-63", 0.3),
    ("CN-54", 0.2),
)
N_PROVINCES = len(PROVINCES)
PROVINCE_WEIGHTS = np.array([w for _, w in PROVINCES]) / sum(w for _, w in PROVINCES)

# Countries: every officially assigned ISO 3166-1 code (the contract's list), by index.
COUNTRIES: tuple[str, ...] = ISO_ALPHA2_CODES
COUNTRY_INDEX: dict[str, int] = {c: i for i, c in enumerate(COUNTRIES)}
CN = COUNTRY_INDEX["CN"]

# Regions: provinces, then every country code (a terminal abroad has the country as its region).
REGIONS: tuple[str, ...] = tuple(p for p, _ in PROVINCES) + COUNTRIES
REGION_OF_COUNTRY = np.array([N_PROVINCES + i for i in range(len(COUNTRIES))], dtype=np.int16)

# Where Chinese customers travel (tourism and business), with weights.
TRAVEL_DESTINATIONS: tuple[tuple[str, float], ...] = (
    ("HK", 14), ("MO", 6), ("JP", 12), ("TH", 10), ("KR", 7), ("SG", 6), ("MY", 5), ("US", 6), ("GB", 3),
    ("FR", 3), ("DE", 3), ("IT", 2), ("AU", 4), ("VN", 4), ("AE", 2), ("ID", 3), ("NZ", 1), ("CH", 1),
    ("CA", 2), ("RU", 1),
)
# Legitimate trade partners of import/export firms, including some on the high-risk list (VN, NG, ZA, KE...).
TRADE_PARTNERS: tuple[tuple[str, float], ...] = (
    ("HK", 18), ("US", 12), ("JP", 8), ("KR", 8), ("DE", 7), ("VN", 6), ("SG", 5), ("AU", 4), ("MY", 4),
    ("TH", 4), ("GB", 3), ("NL", 3), ("IN", 3), ("BR", 3), ("RU", 3), ("AE", 3), ("ID", 3), ("TW", 3),
    ("ZA", 1.5), ("NG", 1.5), ("KE", 1), ("MX", 1), ("TR", 1), ("KZ", 1), ("PK", 1), ("BD", 1),
)
# Where foreign residents of China come from (nationality of non-Chinese customers).
FOREIGN_NATIONALITIES: tuple[tuple[str, float], ...] = (
    ("HK", 20), ("TW", 10), ("MO", 4), ("KR", 10), ("JP", 8), ("US", 8), ("GB", 4), ("DE", 4), ("FR", 3),
    ("SG", 4), ("MY", 4), ("RU", 4), ("VN", 5), ("NG", 3), ("IN", 3), ("CA", 3), ("AU", 3), ("TH", 2),
)
# Scam compounds and proxy exits seen in cross-border telecom fraud (for the ip_abroad typology).
SUSPICIOUS_IP_COUNTRIES: tuple[tuple[str, float], ...] = (
    ("KH", 18), ("MM", 16), ("LA", 8), ("PH", 10), ("VN", 6), ("MY", 6), ("TH", 6), ("HK", 8), ("US", 6),
    ("JP", 4), ("SG", 4), ("AE", 4), ("TR", 2), ("ID", 2),
)

# First octets of IPv4 blocks: Chinese carriers per province, and one or two per foreign country.
_CN_OCTETS = np.array([1, 14, 27, 36, 39, 42, 58, 59, 60, 61, 101, 106, 110, 111, 112, 113, 114, 115, 116,
                       117, 118, 119, 120, 121, 122, 123, 124, 125, 171, 175, 180, 182, 183, 210, 211, 218,
                       219, 220, 221, 222, 223], dtype=np.int64)
_FOREIGN_OCTETS = np.array([3, 4, 8, 12, 13, 17, 18, 23, 24, 31, 37, 41, 45, 46, 49, 62, 63, 64, 66, 67, 68,
                            69, 70, 71, 72, 73, 74, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89,
                            90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 102, 103, 104, 105, 107, 108, 109,
                            126, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142,
                            143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157, 158,
                            159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 172, 173, 174, 176,
                            177, 178, 179, 181, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195,
                            196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207, 208, 209, 212, 213],
                           dtype=np.int64)


def weighted_codes(table: tuple[tuple[str, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Country indices and normalised weights of a ``(code, weight)`` table."""
    idx = np.array([COUNTRY_INDEX[c] for c, _ in table], dtype=np.int16)
    w = np.array([x for _, x in table], dtype=float)
    return idx, w / w.sum()


def cn_ip(rng: np.random.Generator, province: np.ndarray) -> np.ndarray:
    """Random Chinese IPv4 addresses (as integers), the first octet depending on the province."""
    province = np.asarray(province, dtype=np.int64)
    octet = _CN_OCTETS[(province * 7 + rng.integers(0, 3, len(province))) % len(_CN_OCTETS)]
    return (octet << 24) | rng.integers(0, 1 << 24, len(province), dtype=np.int64)


def foreign_ip(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    """Random IPv4 addresses in a block that stands for each (non-Chinese) country."""
    country = np.asarray(country, dtype=np.int64)
    octet = _FOREIGN_OCTETS[(country * 5 + rng.integers(0, 2, len(country))) % len(_FOREIGN_OCTETS)]
    return (octet << 24) | rng.integers(0, 1 << 24, len(country), dtype=np.int64)


def format_ips(ips: np.ndarray) -> pa.Array:
    """Dotted-quad strings of integer IPv4 addresses; ``-1`` becomes an empty string."""
    ips = np.asarray(ips, dtype=np.int64)
    octets = pa.array([str(i) for i in range(256)], pa.string())
    parts = [octets.take(pa.array((ips >> s) & 255)) for s in (24, 16, 8, 0)]
    joined = pc.binary_join_element_wise(*parts, ".")
    return pc.if_else(pa.array(ips < 0), pa.scalar("", pa.string()), joined)
