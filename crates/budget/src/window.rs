//! Budget periods: calendar days and months in a time zone, and rolling windows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::{Timestamp, ToSpan, ZonedDateTime as Zoned, tz::TimeZone};

/// Over what time a budget's spend adds up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Window {
    /// A calendar day in the budget's time zone: resets at local midnight.
    Day,
    /// A calendar month in the budget's time zone: resets at local midnight of the first.
    Month,
    /// The last `Duration` (at least a minute), in 24 slots: spend leaves the window one slot
    /// (1/24 of the window) at a time.
    Rolling(Duration),
}

/// How many slots a rolling window has.
pub(crate) const SLOTS: u32 = 24;

/// Where one budget's spend is kept for the current time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Span {
    /// A calendar period: its id (part of the store key) and when it ends.
    Fixed {
        /// `d2026-12-01` or `m2026-12`.
        id: String,
        /// The end of the period: the store forgets the spend after it.
        ends: SystemTime,
    },
    /// A rolling window: the current slot, how many slots add up, and a slot's length.
    Sliding {
        /// The current slot (milliseconds since the epoch / slot length).
        slot: u64,
        /// Slots that add up (the current one and those before it).
        slots: u32,
        /// A slot's length.
        slot_len: Duration,
    },
}

impl Span {
    /// When the spend counted now stops counting (a period's end; a slot's end plus the
    /// window for a rolling window's oldest slot, reported as the next slot boundary).
    pub fn resets_at(&self) -> SystemTime {
        match self {
            Span::Fixed { ends, .. } => *ends,
            Span::Sliding { slot, slot_len, .. } => {
                let ms = u64::try_from(slot_len.as_millis()).unwrap_or(u64::MAX);
                UNIX_EPOCH + Duration::from_millis(slot.saturating_add(1).saturating_mul(ms))
            }
        }
    }

    /// A short id for keys: the period id, or `r<window seconds>`.
    pub(crate) fn key_part(&self) -> String {
        match self {
            Span::Fixed { id, .. } => id.clone(),
            Span::Sliding {
                slots, slot_len, ..
            } => format!("r{}", slot_len.as_secs().saturating_mul(u64::from(*slots))),
        }
    }
}

impl Window {
    /// The span of this window at `now` in `tz`.
    pub fn span(&self, now: SystemTime, tz: &TimeZone) -> Span {
        match self {
            Window::Rolling(d) => {
                let len = (*d / SLOTS).max(Duration::from_secs(1));
                let ms = u64::try_from(len.as_millis()).unwrap_or(u64::MAX).max(1);
                let now_ms = now
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                Span::Sliding {
                    slot: now_ms / ms,
                    slots: SLOTS,
                    slot_len: len,
                }
            }
            Window::Day | Window::Month => {
                let ts = Timestamp::try_from(now).unwrap_or(Timestamp::UNIX_EPOCH);
                let z = ts.to_zoned_datetime(tz.clone());
                let (id, ends) = if *self == Window::Day {
                    (format!("d{}", z.date()), next(&z, 1.day()))
                } else {
                    (
                        format!("m{:04}-{:02}", z.year(), z.month()),
                        next(&z.first_of_month().unwrap_or_else(|_| z.clone()), 1.month()),
                    )
                };
                Span::Fixed { id, ends }
            }
        }
    }
}

/// Local midnight `by` after `z`'s day starts (a DST day is 23 or 25 hours: the calendar, not
/// 86,400 seconds, decides).
fn next(z: &Zoned, by: jiff::Span) -> SystemTime {
    let start = z.start_of_day().unwrap_or_else(|_| z.clone());
    // A date past what the calendar can hold: the period never ends.
    let never = UNIX_EPOCH + Duration::from_secs(1 << 40);
    start
        .checked_add(by)
        .and_then(|e| e.start_of_day())
        .ok()
        .and_then(|e| SystemTime::try_from(e.timestamp()).ok())
        .unwrap_or(never)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        SystemTime::try_from(s.parse::<Timestamp>().expect("a timestamp")).expect("in range")
    }

    #[test]
    fn days_and_months_follow_the_time_zone() {
        let paris = TimeZone::get("Europe/Paris").expect("the bundled tzdb");
        // 23:30 UTC on 30 November is already 1 December in Paris.
        let now = at("2026-11-30T23:30:00Z");
        match Window::Day.span(now, &TimeZone::UTC) {
            Span::Fixed { id, ends } => {
                assert_eq!(id, "d2026-11-30");
                assert_eq!(ends, at("2026-12-01T00:00:00Z"));
            }
            s @ Span::Sliding { .. } => panic!("{s:?}"),
        }
        match Window::Day.span(now, &paris) {
            Span::Fixed { id, ends } => {
                assert_eq!(id, "d2026-12-01");
                assert_eq!(ends, at("2026-12-01T23:00:00Z"));
            }
            s @ Span::Sliding { .. } => panic!("{s:?}"),
        }
        match Window::Month.span(now, &paris) {
            Span::Fixed { id, ends } => {
                assert_eq!(id, "m2026-12");
                assert_eq!(ends, at("2026-12-31T23:00:00Z"));
            }
            s @ Span::Sliding { .. } => panic!("{s:?}"),
        }
        // A day with a daylight-saving change is 23 hours long.
        match Window::Day.span(at("2026-03-29T12:00:00Z"), &paris) {
            Span::Fixed { ends, .. } => assert_eq!(ends, at("2026-03-29T22:00:00Z")),
            s @ Span::Sliding { .. } => panic!("{s:?}"),
        }
    }

    #[test]
    fn rolling_windows_move_one_slot_at_a_time() {
        let w = Window::Rolling(Duration::from_secs(24 * 3600));
        let a = w.span(at("2026-12-01T10:00:00Z"), &TimeZone::UTC);
        let b = w.span(at("2026-12-01T10:59:59Z"), &TimeZone::UTC);
        let c = w.span(at("2026-12-01T11:00:00Z"), &TimeZone::UTC);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.resets_at(), at("2026-12-01T11:00:00Z"));
    }
}
