"""Fixed exchange rates to CNY, and the currency names of the public formats.

The contract's amounts are in CNY. The public data sets pay in many currencies, so the adapters
convert at the fixed rates below, not at daily rates: a conversion must give the same amounts on
every run, and the data sets are synthetic (their own exchange rates are not published). The rates
are rounded mid rates of September 2022 (the first month of AMLworld's data), CNY per unit. The
original amount and currency stay in the output as the extra columns ``original_amount`` and
``original_currency`` (docs/adapters.md).
"""

from __future__ import annotations

#: CNY per one unit of the currency (ISO 4217 code; XBT for Bitcoin).
CNY_PER_UNIT: dict[str, float] = {
    "CNY": 1.0,
    "USD": 6.90,
    "EUR": 6.90,
    "GBP": 8.00,
    "JPY": 0.0490,
    "CHF": 7.10,
    "CAD": 5.26,
    "AUD": 4.70,
    "INR": 0.0866,
    "RUB": 0.114,
    "MXN": 0.345,
    "BRL": 1.33,
    "ILS": 2.03,
    "SAR": 1.84,
    "AED": 1.88,
    "NGN": 0.0162,
    "PKR": 0.0310,
    "TRY": 0.378,
    "ALL": 0.0590,
    "MAD": 0.650,
    "XBT": 138_000.0,
}

#: AMLworld's currency names (``Receiving Currency``, ``Payment Currency``).
AMLWORLD_CURRENCIES: dict[str, str] = {
    "US Dollar": "USD",
    "Euro": "EUR",
    "Yuan": "CNY",
    "Yen": "JPY",
    "UK Pound": "GBP",
    "Rupee": "INR",
    "Ruble": "RUB",
    "Canadian Dollar": "CAD",
    "Australian Dollar": "AUD",
    "Swiss Franc": "CHF",
    "Mexican Peso": "MXN",
    "Brazil Real": "BRL",
    "Shekel": "ILS",
    "Saudi Riyal": "SAR",
    "Bitcoin": "XBT",
}

#: SAML-D's currency names (``Payment_currency``, ``Received_currency``).
SAMLD_CURRENCIES: dict[str, str] = {
    "UK pounds": "GBP",
    "Dirham": "AED",
    "Euro": "EUR",
    "Indian rupee": "INR",
    "Mexican Peso": "MXN",
    "Naira": "NGN",
    "Pakistani rupee": "PKR",
    "Swiss franc": "CHF",
    "Turkish lira": "TRY",
    "US dollar": "USD",
    "Yen": "JPY",
    "Albanian lek": "ALL",
    "Moroccan dirham": "MAD",
}


def rates_for(names: dict[str, str]) -> dict[str, float]:
    """CNY per unit by the format's own currency name."""
    return {name: CNY_PER_UNIT[code] for name, code in names.items()}
