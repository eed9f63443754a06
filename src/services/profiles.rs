//! Rules for profile fields that are not plain text: IANA timezones, ISO 4217 currencies,
//! session lengths and prices.

use sea_orm::{
    sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::{auth::Role, SharedServices};
use crate::{
    db::{auth::user as account, users::coach_profile},
    error::{Error, Result},
};

/// The coach directory lists a profile only while its owner is an unsuspended COACH.
/// user_db keeps that as `listed` so the directory needs no cross-database join; this
/// re-derives it from the account as auth_db has it now.
///
/// It runs to completion in a task of its own (a caller that goes away cannot leave the
/// flag stale), with the coach profile row locked while the account is read, so two
/// syncs racing (an upsert's and a suspension's) apply in order and the later read wins.
pub async fn sync_listing(services: SharedServices, user_id: Uuid) -> Result<()> {
    tokio::spawn(async move {
        let txn = services.stores.users.begin().await?;
        let locked = coach_profile::Entity::find_by_id(user_id)
            .lock_exclusive()
            .one(&txn)
            .await?;
        if locked.is_none() {
            return Ok(());
        }
        let listed = account::Entity::find_by_id(user_id)
            .one(&services.stores.auth)
            .await?
            .is_some_and(|a| a.role == Role::Coach.as_str() && !a.suspended);
        coach_profile::Entity::update_many()
            .col_expr(coach_profile::Column::Listed, Expr::value(listed))
            .filter(coach_profile::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    })
    .await
    .map_err(Error::internal)?
}

pub const SESSION_MINUTES: std::ops::RangeInclusive<i32> = 15..=240;
pub const DEFAULT_SESSION_MINUTES: i32 = 60;
pub const MAX_PRICE_CENTS: i32 = 100_000_000;
pub const HEADLINE_MAX: usize = 120;
pub const BIO_MAX: usize = 2_000;
pub const DISPLAY_NAME_MAX: usize = 80;
pub const MAX_SPECIALTIES: usize = 10;

/// An IANA timezone name (`Europe/Paris`), as chrono-tz knows them.
pub fn timezone(field: &str, value: &str) -> Result<String> {
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
pub fn currency(value: &str) -> Result<String> {
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

pub fn session_minutes(value: i32) -> Result<i32> {
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

pub fn price_cents(value: i32) -> Result<i32> {
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
