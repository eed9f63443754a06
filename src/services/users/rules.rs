//! Rules for profile fields that are not plain text: IANA timezones, ISO 4217 currencies,
//! session lengths and prices.

use crate::error::{Error, Result};

pub(crate) const SESSION_MINUTES: std::ops::RangeInclusive<i32> = 15..=240;
pub(crate) const DEFAULT_SESSION_MINUTES: i32 = 60;
pub(crate) const MAX_PRICE_CENTS: i32 = 100_000_000;
pub(crate) const HEADLINE_MAX: usize = 120;
pub(crate) const BIO_MAX: usize = 2_000;
pub(crate) const DISPLAY_NAME_MAX: usize = 80;
pub(crate) const MAX_SPECIALTIES: usize = 10;
/// A new profile's timezone until its owner sets one.
pub(crate) const DEFAULT_TIMEZONE: &str = "UTC";

/// An IANA timezone name (`Europe/Paris`), as chrono-tz knows them.
pub(crate) fn timezone(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    value
        .parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_string())
        .map_err(|_| {
            Error::bad_input(
                field,
                format!("{field} must be an IANA timezone name such as Europe/Paris"),
            )
        })
}

/// Active ISO 4217 currency codes.
const CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// An ISO 4217 code; lower case is accepted and answered upper case.
pub(crate) fn currency(value: &str) -> Result<String> {
    let code = value.trim().to_ascii_uppercase();
    if CURRENCIES.binary_search(&code.as_str()).is_ok() {
        Ok(code)
    } else {
        Err(Error::bad_input(
            "currency",
            "currency must be an ISO 4217 code such as EUR",
        ))
    }
}

pub(crate) fn session_minutes(value: i32) -> Result<i32> {
    if SESSION_MINUTES.contains(&value) {
        Ok(value)
    } else {
        Err(Error::bad_input(
            "sessionMinutes",
            format!(
                "sessionMinutes must be between {} and {}",
                SESSION_MINUTES.start(),
                SESSION_MINUTES.end()
            ),
        ))
    }
}

pub(crate) fn price_cents(value: i32) -> Result<i32> {
    if (0..=MAX_PRICE_CENTS).contains(&value) {
        Ok(value)
    } else {
        Err(Error::bad_input(
            "priceCents",
            format!("priceCents must be between 0 and {MAX_PRICE_CENTS}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_sorted_for_binary_search() {
        assert!(CURRENCIES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(currency("eur").unwrap(), "EUR");
        assert!(currency("EURO").is_err());
        assert!(currency("XXX").is_err());
    }

    #[test]
    fn timezones_are_iana_names() {
        assert_eq!(
            timezone("timezone", " Europe/Paris ").unwrap(),
            "Europe/Paris"
        );
        assert!(timezone("timezone", "Mars/Olympus").is_err());
        assert!(timezone("timezone", "").is_err());
    }

    #[test]
    fn bounds() {
        assert!(session_minutes(14).is_err() && session_minutes(241).is_err());
        assert_eq!(session_minutes(45).unwrap(), 45);
        assert!(price_cents(-1).is_err());
    }
}
