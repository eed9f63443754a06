//! Slot maths, with no database and no clock of its own, so that every DST rule is a
//! unit test.
//!
//! A coach's weekly rules are wall-clock windows in the coach's IANA timezone. For each
//! local date, each rule of that weekday yields slots of `session` minutes from the
//! rule's start, every `session` minutes, while the slot ends within the rule. A slot is
//! answered in UTC, and only when its wall-clock start exists and its real length is
//! exactly `session`: in a spring-forward gap chrono-tz answers `LocalResult::None`
//! (never unwrapped here), and a slot that spans the jump would be shorter or longer
//! than booked. In an autumn overlap a wall-clock time names two instants
//! (`LocalResult::Ambiguous`): each wall-clock slot is offered once, at the first instant
//! that gives it its exact length, and no two offered slots share an instant.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{Error, Result};

/// Minutes in a day: the latest a rule may end ("24:00").
pub(crate) const DAY_MINUTES: i32 = 24 * 60;
/// Slots start at least this long after now.
pub(crate) const MIN_NOTICE: Duration = Duration::hours(2);
/// Slots start at most this long after now.
pub(crate) const MAX_AHEAD: Duration = Duration::days(90);
/// The widest window `availableSlots` answers.
pub(crate) const MAX_WINDOW: Duration = Duration::days(31);

/// A weekly window: weekday 1 (Monday) to 7 (Sunday), minutes since local midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) weekday: u32,
    pub(crate) start: i32,
    pub(crate) end: i32,
}

/// A half-open interval of time, `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Span {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

impl Span {
    pub(crate) fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Reads "HH:MM" (00:00 to 24:00) as minutes since midnight.
pub(crate) fn parse_time(field: &str, value: &str) -> Result<i32> {
    let bad = || Error::bad_input(field, format!("{field} must be a time \"HH:MM\""));
    let (h, m) = value.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let minutes = h * 60 + m;
    if h > 24 || m > 59 || minutes > DAY_MINUTES {
        return Err(bad());
    }
    Ok(minutes)
}

/// Minutes since midnight as "HH:MM".
pub(crate) fn format_time(minutes: i32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Checks a set of weekly rules: weekday 1–7, end after start on the same day (a rule
/// crossing midnight is two rules), no two rules of one weekday overlapping, at most
/// `max` rules.
pub(crate) fn check_rules(rules: &[Rule], max: usize) -> Result<()> {
    if rules.len() > max {
        return Err(Error::bad_input("rules", format!("at most {max} rules")));
    }
    for r in rules {
        if !(1..=7).contains(&r.weekday) {
            return Err(Error::bad_input(
                "weekday",
                "weekday must be between 1 (Monday) and 7 (Sunday)",
            ));
        }
        if r.end <= r.start {
            return Err(Error::bad_input(
                "endTime",
                "endTime must be after startTime on the same day (split a rule that crosses midnight in two)",
            ));
        }
    }
    let mut sorted = rules.to_vec();
    sorted.sort_by_key(|r| (r.weekday, r.start));
    if sorted
        .windows(2)
        .any(|w| w[0].weekday == w[1].weekday && w[1].start < w[0].end)
    {
        return Err(Error::bad_input(
            "rules",
            "two rules of one weekday overlap",
        ));
    }
    Ok(())
}

/// Checks an `availableSlots` window: `to` not before `from`, at most 31 days wide.
pub(crate) fn check_window(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<()> {
    if to < from {
        return Err(Error::bad_input("to", "to must not be before from"));
    }
    if to - from > MAX_WINDOW {
        return Err(Error::bad_input("to", "the window is at most 31 days"));
    }
    Ok(())
}

/// What slots are computed from.
pub(crate) struct Plan<'a> {
    pub(crate) rules: &'a [Rule],
    pub(crate) tz: Tz,
    pub(crate) session_minutes: i64,
    pub(crate) now: DateTime<Utc>,
    /// Time off and active appointments: a slot overlapping any of them is not offered.
    pub(crate) busy: &'a [Span],
}

impl Plan<'_> {
    /// The free slots whose start lies in `[from, to)`, at least 2 hours and at most
    /// 90 days after now, soonest first. `from`/`to` are expected checked
    /// ([`check_window`]).
    pub(crate) fn slots(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Span> {
        let earliest = from.max(self.now + MIN_NOTICE);
        // A start exactly 90 days ahead is offered (and booked), nothing after it: the
        // exclusive end is one microsecond later (the clock's precision), not a second,
        // which would offer a start that a booking refuses when `now` has a fraction.
        let latest = match self
            .now
            .checked_add_signed(MAX_AHEAD + Duration::microseconds(1))
        {
            Some(l) => to.min(l),
            None => to,
        };
        if earliest >= latest || self.session_minutes <= 0 || self.rules.is_empty() {
            return Vec::new();
        }
        let session = Duration::minutes(self.session_minutes);
        // Local dates that can hold a slot starting in the window (a day either side
        // covers every offset).
        let first = earliest.with_timezone(&self.tz).date_naive().pred_opt();
        let last = latest.with_timezone(&self.tz).date_naive().succ_opt();
        let (Some(first), Some(last)) = (first, last) else {
            return Vec::new();
        };
        let mut out: Vec<Span> = Vec::new();
        let mut date = first;
        while date <= last {
            let weekday = date.weekday().number_from_monday();
            for rule in self.rules.iter().filter(|r| r.weekday == weekday) {
                let mut start = rule.start as i64;
                while start + self.session_minutes <= rule.end as i64 {
                    if let Some(span) = self.resolve(date, start, session) {
                        if span.start >= earliest && span.start < latest {
                            out.push(span);
                        }
                    }
                    start += self.session_minutes;
                }
            }
            match date.succ_opt() {
                Some(d) => date = d,
                None => break,
            }
        }
        out.sort();
        // Never one instant twice: keep a slot only when it starts after the previous
        // kept one ended.
        let mut kept: Vec<Span> = Vec::with_capacity(out.len());
        for span in out {
            if kept.last().is_some_and(|prev| span.start < prev.end) {
                continue;
            }
            kept.push(span);
        }
        let busy = merged(self.busy);
        kept.retain(|s| !touches(&busy, s));
        kept
    }

    /// The slot of `date` starting `start` minutes after local midnight, if its
    /// wall-clock start exists and it lasts exactly `session` of real time, ending on the
    /// wall-clock time it should.
    fn resolve(&self, date: NaiveDate, start: i64, session: Duration) -> Option<Span> {
        let local_start = date.and_time(NaiveTime::MIN) + Duration::minutes(start);
        let local_end = local_start + session;
        let candidates: Vec<DateTime<Tz>> = match self.tz.from_local_datetime(&local_start) {
            LocalResult::None => return None,
            LocalResult::Single(t) => vec![t],
            LocalResult::Ambiguous(a, b) => vec![a, b],
        };
        candidates.into_iter().find_map(|t| {
            let start = t.with_timezone(&Utc);
            let end = start + session;
            (end.with_timezone(&self.tz).naive_local() == local_end).then_some(Span { start, end })
        })
    }
}

/// `spans` sorted and merged into disjoint intervals, so each slot is checked against
/// them by binary search instead of against every busy span.
fn merged(spans: &[Span]) -> Vec<Span> {
    let mut sorted = spans.to_vec();
    sorted.sort();
    let mut out: Vec<Span> = Vec::with_capacity(sorted.len());
    for span in sorted {
        match out.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => out.push(span),
        }
    }
    out
}

/// True when `slot` overlaps one of the disjoint, sorted `busy` intervals.
fn touches(busy: &[Span], slot: &Span) -> bool {
    let first_ending_after = busy.partition_point(|b| b.end <= slot.start);
    busy.get(first_ending_after)
        .is_some_and(|b| b.overlaps(slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn every_day(start: i32, end: i32) -> Vec<Rule> {
        (1..=7)
            .map(|weekday| Rule {
                weekday,
                start,
                end,
            })
            .collect()
    }

    fn plan<'a>(rules: &'a [Rule], tz: Tz, minutes: i64, now: &str, busy: &'a [Span]) -> Plan<'a> {
        Plan {
            rules,
            tz,
            session_minutes: minutes,
            now: utc(now),
            busy,
        }
    }

    fn assert_sound(slots: &[Span], minutes: i64) {
        for s in slots {
            assert_eq!(s.end - s.start, Duration::minutes(minutes), "{s:?}");
        }
        for w in slots.windows(2) {
            assert!(w[0].end <= w[1].start, "overlap or repeat: {w:?}");
        }
    }

    #[test]
    fn times_parse_and_format() {
        assert_eq!(parse_time("startTime", "09:30").unwrap(), 570);
        assert_eq!(parse_time("endTime", "24:00").unwrap(), 1440);
        for bad in [
            "9:30", "24:01", "12:60", "ab:cd", "", "1230", "-1:00", "+1:00",
        ] {
            assert!(parse_time("t", bad).is_err(), "{bad}");
        }
        assert_eq!(format_time(570), "09:30");
        assert_eq!(format_time(1440), "24:00");
    }

    #[test]
    fn a_rule_crossing_midnight_is_refused() {
        let rules = [Rule {
            weekday: 1,
            start: 22 * 60,
            end: 2 * 60,
        }];
        let err = check_rules(&rules, 50).unwrap_err();
        assert_eq!(err.code(), "BAD_USER_INPUT");
        let empty = [Rule {
            weekday: 1,
            start: 600,
            end: 600,
        }];
        assert!(check_rules(&empty, 50).is_err());
    }

    #[test]
    fn rules_are_checked() {
        let overlapping = [
            Rule {
                weekday: 2,
                start: 540,
                end: 720,
            },
            Rule {
                weekday: 2,
                start: 700,
                end: 800,
            },
        ];
        assert!(check_rules(&overlapping, 50).is_err());
        let touching = [
            Rule {
                weekday: 2,
                start: 540,
                end: 720,
            },
            Rule {
                weekday: 2,
                start: 720,
                end: 800,
            },
            Rule {
                weekday: 3,
                start: 540,
                end: 720,
            },
        ];
        assert!(check_rules(&touching, 50).is_ok());
        assert!(check_rules(&touching, 2).is_err());
        assert!(check_rules(
            &[Rule {
                weekday: 8,
                start: 0,
                end: 60
            }],
            50
        )
        .is_err());
        assert!(check_rules(
            &[Rule {
                weekday: 0,
                start: 0,
                end: 60
            }],
            50
        )
        .is_err());
    }

    #[test]
    fn windows_are_checked() {
        let from = utc("2030-01-01T00:00:00Z");
        assert!(check_window(from, from - Duration::seconds(1)).is_err());
        assert!(check_window(from, from + Duration::days(31)).is_ok());
        assert!(check_window(from, from + Duration::days(31) + Duration::seconds(1)).is_err());
    }

    #[test]
    fn slots_follow_the_rule_grid_in_local_time() {
        // Monday 2030-01-07, Paris is UTC+1 in winter: 09:00-11:30 local gives 09:00 and
        // 10:00 (08:00Z, 09:00Z); 11:00-12:00 would not end within the rule.
        let rules = [Rule {
            weekday: 1,
            start: 540,
            end: 690,
        }];
        let p = plan(
            &rules,
            chrono_tz::Europe::Paris,
            60,
            "2030-01-01T00:00:00Z",
            &[],
        );
        let slots = p.slots(utc("2030-01-07T00:00:00Z"), utc("2030-01-08T00:00:00Z"));
        let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            vec![utc("2030-01-07T08:00:00Z"), utc("2030-01-07T09:00:00Z")]
        );
        assert_sound(&slots, 60);
        // The window is half-open on `to`.
        let slots = p.slots(utc("2030-01-07T08:00:00Z"), utc("2030-01-07T10:00:00Z"));
        assert_eq!(slots.len(), 2);
    }

    #[test]
    fn paris_spring_forward_offers_no_slot_in_or_across_the_gap() {
        // Sunday 2030-03-31: 02:00 local jumps to 03:00.
        let rules = every_day(0, 6 * 60);
        let p = plan(
            &rules,
            chrono_tz::Europe::Paris,
            60,
            "2030-03-01T00:00:00Z",
            &[],
        );
        let slots = p.slots(utc("2030-03-30T22:00:00Z"), utc("2030-03-31T06:00:00Z"));
        let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        // 00:00 CET; not 01:00 CET (it would end at 02:00, a wall-clock time that does
        // not exist) nor 02:00 (it does not exist); then 03:00, 04:00 and 05:00 CEST.
        assert_eq!(
            starts,
            vec![
                utc("2030-03-30T23:00:00Z"),
                utc("2030-03-31T01:00:00Z"),
                utc("2030-03-31T02:00:00Z"),
                utc("2030-03-31T03:00:00Z"),
            ]
        );
        assert_sound(&slots, 60);
    }

    #[test]
    fn paris_autumn_overlap_never_offers_an_instant_twice() {
        // Sunday 2030-10-27: 03:00 CEST goes back to 02:00 CET.
        let rules = every_day(0, 5 * 60);
        let p = plan(
            &rules,
            chrono_tz::Europe::Paris,
            60,
            "2030-10-01T00:00:00Z",
            &[],
        );
        let slots = p.slots(utc("2030-10-26T21:00:00Z"), utc("2030-10-27T05:00:00Z"));
        assert_sound(&slots, 60);
        let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            vec![
                utc("2030-10-26T22:00:00Z"), // 00:00 CEST
                utc("2030-10-26T23:00:00Z"), // 01:00 CEST
                utc("2030-10-27T01:00:00Z"), // 02:00 CET (02:00 CEST would end at 02:00 CET)
                utc("2030-10-27T02:00:00Z"), // 03:00 CET
                utc("2030-10-27T03:00:00Z"), // 04:00 CET
            ]
        );
        // 30-minute sessions: both 02:00 and 02:30 exist twice; each instant is offered
        // at most once and no slot overlaps another.
        let p = plan(
            &rules,
            chrono_tz::Europe::Paris,
            30,
            "2030-10-01T00:00:00Z",
            &[],
        );
        let slots = p.slots(utc("2030-10-26T21:00:00Z"), utc("2030-10-27T05:00:00Z"));
        assert_sound(&slots, 30);
        // 00:00 to 02:00 CEST (four), 02:30 CET (02:30 CEST would end at 02:00 CET), then
        // 03:00 to 04:30 CET (four).
        assert_eq!(slots.len(), 10, "{slots:?}");
    }

    #[test]
    fn new_york_transitions() {
        // 2030-03-10: 02:00 EST jumps to 03:00 EDT; 2030-11-03: 02:00 EDT back to 01:00 EST.
        let rules = every_day(60, 4 * 60);
        let p = plan(
            &rules,
            chrono_tz::America::New_York,
            60,
            "2030-03-01T00:00:00Z",
            &[],
        );
        let spring = p.slots(utc("2030-03-10T05:00:00Z"), utc("2030-03-10T12:00:00Z"));
        assert_sound(&spring, 60);
        // 01:00 EST (06:00Z) ends at 02:00, which does not exist: not offered; 02:00 does
        // not exist; 03:00 EDT (07:00Z) is.
        assert_eq!(
            spring.iter().map(|s| s.start).collect::<Vec<_>>(),
            vec![utc("2030-03-10T07:00:00Z")]
        );
        let p = plan(
            &rules,
            chrono_tz::America::New_York,
            60,
            "2030-10-15T00:00:00Z",
            &[],
        );
        let autumn = p.slots(utc("2030-11-03T04:00:00Z"), utc("2030-11-03T12:00:00Z"));
        assert_sound(&autumn, 60);
        // 01:00 EDT (05:00Z) would end at 01:00 EST, not at 02:00: the 01:00 slot is the
        // one at 01:00 EST (06:00Z), offered once; then 02:00 and 03:00 EST.
        assert_eq!(
            autumn.iter().map(|s| s.start).collect::<Vec<_>>(),
            vec![
                utc("2030-11-03T06:00:00Z"),
                utc("2030-11-03T07:00:00Z"),
                utc("2030-11-03T08:00:00Z")
            ]
        );
    }

    #[test]
    fn lord_howe_half_hour_shift() {
        // Lord Howe moves by 30 minutes: on 2030-10-06 02:00 local (+10:30) jumps to
        // 02:30 (+11:00); on 2030-04-07 02:00 (+11:00) goes back to 01:30 (+10:30).
        let rules = every_day(60, 4 * 60);
        let tz = chrono_tz::Australia::Lord_Howe;
        let p = plan(&rules, tz, 30, "2030-09-20T00:00:00Z", &[]);
        let spring = p.slots(utc("2030-10-05T12:00:00Z"), utc("2030-10-05T20:00:00Z"));
        assert_sound(&spring, 30);
        let local: Vec<String> = spring
            .iter()
            .map(|s| s.start.with_timezone(&tz).format("%H:%M").to_string())
            .collect();
        // 01:30 would end at 02:00 (which does not exist), 02:00 does not exist.
        assert_eq!(local, ["01:00", "02:30", "03:00", "03:30"]);

        let p = plan(&rules, tz, 30, "2030-03-20T00:00:00Z", &[]);
        let autumn = p.slots(utc("2030-04-06T12:00:00Z"), utc("2030-04-06T20:00:00Z"));
        assert_sound(&autumn, 30);
        // 01:00 (+11:00); 01:30 exists twice, and only 01:30 (+10:30) lasts until 02:00;
        // then 02:00 to 03:30 (+10:30).
        assert_eq!(
            autumn.iter().map(|s| s.start).collect::<Vec<_>>(),
            vec![
                utc("2030-04-06T14:00:00Z"),
                utc("2030-04-06T15:00:00Z"),
                utc("2030-04-06T15:30:00Z"),
                utc("2030-04-06T16:00:00Z"),
                utc("2030-04-06T16:30:00Z"),
                utc("2030-04-06T17:00:00Z"),
            ]
        );
    }

    #[test]
    fn notice_horizon_and_busy_time_remove_slots() {
        let rules = every_day(0, DAY_MINUTES);
        let now = "2030-01-01T10:00:00Z";
        let p = plan(&rules, chrono_tz::UTC, 60, now, &[]);
        let slots = p.slots(utc("2030-01-01T00:00:00Z"), utc("2030-01-02T00:00:00Z"));
        assert_eq!(
            slots[0].start,
            utc("2030-01-01T12:00:00Z"),
            "2 hours ahead at least"
        );
        let far = p.slots(utc("2030-03-31T00:00:00Z"), utc("2030-04-02T00:00:00Z"));
        assert_eq!(
            far.last().unwrap().start,
            utc("2030-04-01T10:00:00Z"),
            "90 days at most"
        );

        // Half a second before a slot is 90 days ahead, that slot lies beyond the
        // horizon (a booking refuses it), so it is not offered.
        let p = plan(&rules, chrono_tz::UTC, 60, "2030-01-01T09:59:59.5Z", &[]);
        let far = p.slots(utc("2030-03-31T00:00:00Z"), utc("2030-04-02T00:00:00Z"));
        assert_eq!(
            far.last().unwrap().start,
            utc("2030-04-01T09:00:00Z"),
            "nothing beyond 90 days, by any fraction of a second"
        );

        let busy = [
            Span {
                start: utc("2030-01-01T13:30:00Z"),
                end: utc("2030-01-01T14:10:00Z"),
            },
            Span {
                start: utc("2030-01-01T16:00:00Z"),
                end: utc("2030-01-01T17:00:00Z"),
            },
        ];
        let p = plan(&rules, chrono_tz::UTC, 60, now, &busy);
        let starts: Vec<_> = p
            .slots(utc("2030-01-01T12:00:00Z"), utc("2030-01-01T18:00:00Z"))
            .iter()
            .map(|s| s.start)
            .collect();
        assert_eq!(
            starts,
            vec![
                utc("2030-01-01T12:00:00Z"),
                utc("2030-01-01T15:00:00Z"),
                utc("2030-01-01T17:00:00Z")
            ]
        );
    }

    #[test]
    fn busy_time_is_merged_before_it_is_searched() {
        let at = |m: i64| utc("2030-01-01T00:00:00Z") + Duration::minutes(m);
        let span = |a: i64, b: i64| Span {
            start: at(a),
            end: at(b),
        };
        let busy = merged(&[span(50, 70), span(0, 10), span(5, 20), span(20, 30)]);
        assert_eq!(busy, vec![span(0, 30), span(50, 70)]);
        assert!(touches(&busy, &span(25, 40)));
        assert!(
            !touches(&busy, &span(30, 50)),
            "touching ends do not overlap"
        );
        assert!(touches(&busy, &span(40, 55)));
        assert!(!touches(&busy, &span(70, 90)));
        assert!(touches(&busy, &span(-10, 100)));
    }

    #[test]
    fn extreme_windows_do_not_panic() {
        let rules = every_day(0, DAY_MINUTES);
        let p = plan(
            &rules,
            chrono_tz::Pacific::Kiritimati,
            15,
            "2030-01-01T00:00:00Z",
            &[],
        );
        assert!(p
            .slots(DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MIN_UTC)
            .is_empty());
        assert!(p
            .slots(DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MAX_UTC)
            .is_empty());
        let p = plan(&rules, chrono_tz::UTC, 60, "2030-01-01T00:00:00Z", &[]);
        assert!(p
            .slots(utc("2030-01-01T00:00:00Z"), utc("2030-01-01T00:00:00Z"))
            .is_empty());
    }
}
