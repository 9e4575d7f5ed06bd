//! The bucket arithmetic: a GCRA token bucket that can reserve, charge more and refund, and a
//! fixed UTC-day quota. Pure functions over plain state, shared by the in-memory store and
//! mirrored line for line by the Redis scripts.
//!
//! GCRA keeps one number per bucket, the *theoretical arrival time* (TAT): the instant at which
//! the bucket would be full again. Taking `n` tokens moves it `n × period / limit` later; a
//! request fits if the TAT stays within one `period` of now (a full bucket holds `limit`
//! tokens). Refunding moves it back, never before now (a bucket cannot hold more than full).
//! Charging more than was reserved may push it beyond the window: that is debt, and later
//! requests wait it out.

/// Microseconds, the unit of every time here.
pub type Micros = u64;

/// A GCRA bucket's parameters: `limit` units per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gcra {
    /// Units per period (requests or tokens).
    pub limit: u64,
    /// The period in microseconds.
    pub period: Micros,
}

/// Why a reservation does not fit.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// It fits after waiting this long.
    RetryAfter(Micros),
    /// It never fits: more units than the bucket holds.
    TooLarge,
}

impl Gcra {
    /// The time `n` units take to refill.
    pub fn cost(&self, n: u64) -> Micros {
        if self.limit == 0 {
            return Micros::MAX;
        }
        let c = u128::from(n) * u128::from(self.period) / u128::from(self.limit);
        Micros::try_from(c).unwrap_or(Micros::MAX)
    }

    /// Reserves `n` units at `now`: the new TAT, or why not.
    pub fn reserve(&self, tat: Micros, now: Micros, n: u64) -> Result<Micros, Denied> {
        let cost = self.cost(n);
        if n > self.limit || cost > self.period {
            return Err(Denied::TooLarge);
        }
        let new = tat.max(now).saturating_add(cost);
        let ahead = new - now;
        if ahead <= self.period {
            Ok(new)
        } else {
            Err(Denied::RetryAfter(ahead - self.period))
        }
    }

    /// Charges `delta` more units (positive) or refunds them (negative).
    pub fn adjust(&self, tat: Micros, now: Micros, delta: i64) -> Micros {
        if delta >= 0 {
            tat.max(now).saturating_add(self.cost(delta.unsigned_abs()))
        } else {
            tat.saturating_sub(self.cost(delta.unsigned_abs())).max(now)
        }
    }

    /// Units available now (what a request could take at once).
    pub fn remaining(&self, tat: Micros, now: Micros) -> u64 {
        let used = tat.saturating_sub(now);
        if used >= self.period {
            return 0;
        }
        let free =
            u128::from(self.period - used) * u128::from(self.limit) / u128::from(self.period);
        u64::try_from(free).unwrap_or(u64::MAX).min(self.limit)
    }

    /// Time until the bucket is full again.
    pub fn reset(&self, tat: Micros, now: Micros) -> Micros {
        tat.saturating_sub(now)
    }
}

/// Microseconds in a day.
pub const DAY: Micros = 86_400_000_000;

/// A fixed-window quota per UTC day: `used` units of `limit` on `day` (days since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayWindow {
    /// Days since the Unix epoch.
    pub day: u64,
    /// Units used that day.
    pub used: u64,
}

impl DayWindow {
    /// The window as seen at `wall` (microseconds since the epoch): a new day starts empty.
    #[must_use]
    pub fn current(self, wall: Micros) -> Self {
        let day = wall / DAY;
        if day == self.day {
            self
        } else {
            Self { day, used: 0 }
        }
    }

    /// Reserves `n` of `limit` at `wall`.
    pub fn reserve(self, limit: u64, wall: Micros, n: u64) -> Result<Self, Denied> {
        let w = self.current(wall);
        if n > limit {
            return Err(Denied::TooLarge);
        }
        // `used` may exceed the limit (debt charged after the fact): no overflow either way.
        match w.used.checked_add(n).filter(|u| *u <= limit) {
            Some(used) => Ok(Self { used, ..w }),
            None => Err(Denied::RetryAfter(DAY - wall % DAY)),
        }
    }

    /// Charges (positive) or refunds (negative) `delta`.
    #[must_use]
    pub fn adjust(self, wall: Micros, delta: i64) -> Self {
        let w = self.current(wall);
        let used = if delta >= 0 {
            w.used.saturating_add(delta.unsigned_abs())
        } else {
            w.used.saturating_sub(delta.unsigned_abs())
        };
        Self { used, ..w }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Micros = 60_000_000;

    #[test]
    fn a_full_bucket_admits_its_limit_at_once_and_no_more() {
        let g = Gcra {
            limit: 100,
            period: MIN,
        };
        let mut tat = 0;
        let now = 1_000 * MIN;
        for _ in 0..100 {
            tat = g.reserve(tat, now, 1).unwrap();
        }
        assert_eq!(g.remaining(tat, now), 0);
        match g.reserve(tat, now, 1) {
            Err(Denied::RetryAfter(w)) => assert_eq!(w, g.cost(1)),
            other => panic!("{other:?}"),
        }
        // After exactly the wait, it fits.
        assert!(g.reserve(tat, now + g.cost(1), 1).is_ok());
    }

    #[test]
    fn all_or_nothing_sizes_and_refunds() {
        let g = Gcra {
            limit: 1000,
            period: MIN,
        };
        let now = 5 * MIN;
        assert_eq!(g.reserve(0, now, 1001), Err(Denied::TooLarge));
        let tat = g.reserve(0, now, 600).unwrap();
        assert_eq!(g.remaining(tat, now), 400);
        assert!(matches!(
            g.reserve(tat, now, 500),
            Err(Denied::RetryAfter(_))
        ));
        // Refund 300 of the 600: 700 free.
        let tat = g.adjust(tat, now, -300);
        assert_eq!(g.remaining(tat, now), 700);
        // Refunds never make a bucket fuller than full.
        let tat = g.adjust(tat, now, -10_000);
        assert_eq!(tat, now);
        assert_eq!(g.remaining(tat, now), 1000);
        // Charging beyond the window is debt.
        let tat = g.adjust(tat, now, 1500);
        assert_eq!(g.remaining(tat, now), 0);
        assert!(g.reset(tat, now) > MIN);
    }

    #[test]
    fn refill_is_linear() {
        let g = Gcra {
            limit: 60,
            period: MIN,
        };
        let now = 10 * MIN;
        let tat = g.reserve(0, now, 60).unwrap();
        assert_eq!(g.remaining(tat, now + 30_000_000), 30);
        assert_eq!(g.remaining(tat, now + MIN), 60);
    }

    #[test]
    fn random_sequences_never_admit_more_than_limit_plus_refill() {
        // A deterministic pseudo-random walk of reserve/refund/charge, checking the invariant:
        // units admitted in any window [t, t + period) never exceed limit + one period of refill.
        let g = Gcra {
            limit: 500,
            period: 1_000_000,
        };
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut tat = 0;
        let mut now = 10_000_000;
        let mut log: Vec<(Micros, u64)> = Vec::new();
        for _ in 0..20_000 {
            now += rnd() % 5_000;
            let n = 1 + rnd() % 80;
            if let Ok(t) = g.reserve(tat, now, n) {
                tat = t;
                log.push((now, n));
            }
        }
        for (i, &(t0, _)) in log.iter().enumerate() {
            let in_window: u64 = log[i..]
                .iter()
                .take_while(|(t, _)| *t < t0 + g.period)
                .map(|(_, n)| n)
                .sum();
            // A full bucket at the window's start plus one period of refill.
            assert!(in_window <= 2 * g.limit, "window at {t0}: {in_window}");
        }
    }

    #[test]
    fn day_window_resets_at_utc_midnight() {
        let w = DayWindow::default();
        let t = 20_000 * DAY + 5;
        let w = w.reserve(10, t, 7).unwrap();
        assert_eq!(w.used, 7);
        match w.reserve(10, t, 4) {
            Err(Denied::RetryAfter(d)) => assert_eq!(d, DAY - 5),
            other => panic!("{other:?}"),
        }
        let w = w.adjust(t, -3);
        assert_eq!(w.used, 4);
        let next = w.reserve(10, t + DAY, 10).unwrap();
        assert_eq!(next.used, 10);
    }

    #[test]
    fn extreme_amounts_saturate_and_never_panic() {
        let g = Gcra {
            limit: 1000,
            period: MIN,
        };
        let now = 5 * MIN;
        assert_eq!(g.reserve(0, now, u64::MAX), Err(Denied::TooLarge));
        assert!(matches!(
            g.reserve(u64::MAX, now, 1),
            Err(Denied::RetryAfter(_))
        ));
        assert_eq!(g.cost(u64::MAX), Micros::MAX);
        // Charges and refunds of any size stay within the clock.
        let tat = g.adjust(0, now, i64::MAX);
        assert_eq!(g.adjust(tat, now, i64::MAX), u64::MAX);
        assert_eq!(g.adjust(u64::MAX, now, i64::MIN), now);
        assert_eq!(g.remaining(u64::MAX, now), 0);
        assert_eq!(g.remaining(0, u64::MAX), 1000);
        // A limit of 0, or a period of 0 or of u64::MAX.
        for g in [
            Gcra {
                limit: 0,
                period: MIN,
            },
            Gcra {
                limit: u64::MAX,
                period: 0,
            },
            Gcra {
                limit: u64::MAX,
                period: u64::MAX,
            },
            Gcra {
                limit: 1,
                period: u64::MAX,
            },
        ] {
            let _ = g.reserve(0, now, u64::MAX);
            let _ = g.reserve(u64::MAX, u64::MAX, 1);
            let _ = g.adjust(u64::MAX, now, i64::MAX);
            let _ = g.remaining(u64::MAX, 0);
        }
        // A day window in debt beyond u64 refuses, never wraps.
        let t = 20_000 * DAY;
        let w = DayWindow::default()
            .adjust(t, i64::MAX)
            .adjust(t, i64::MAX)
            .adjust(t, i64::MAX);
        assert_eq!(w.used, u64::MAX);
        assert!(matches!(
            w.reserve(u64::MAX, t, 1),
            Err(Denied::RetryAfter(_))
        ));
        assert_eq!(
            DayWindow::default()
                .reserve(u64::MAX, t, u64::MAX)
                .unwrap()
                .used,
            u64::MAX
        );
        assert_eq!(
            w.adjust(t, i64::MIN).used,
            u64::MAX - i64::MIN.unsigned_abs()
        );
    }
}
