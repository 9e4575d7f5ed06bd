use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use super::{BudgetStore, Hold, StoreError, Verdict};
use crate::{Clock, Span, SystemClock};

/// The default bound on keys kept.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

#[derive(Debug)]
enum Entry {
    Fixed {
        spent: u64,
        ends: SystemTime,
    },
    /// (slot, spend in it), oldest first.
    Sliding(VecDeque<(u64, u64)>),
}

impl Entry {
    fn new(span: &Span) -> Self {
        match span {
            Span::Fixed { ends, .. } => Entry::Fixed {
                spent: 0,
                ends: *ends,
            },
            Span::Sliding { .. } => Entry::Sliding(VecDeque::new()),
        }
    }

    /// The spend counted at `span` (forgetting what has left the window).
    fn spent(&mut self, span: &Span) -> u64 {
        match (self, span) {
            (Entry::Fixed { spent, .. }, Span::Fixed { .. }) => *spent,
            (Entry::Sliding(q), Span::Sliding { slot, slots, .. }) => {
                let first = slot.saturating_sub(u64::from(*slots) - 1);
                while q.front().is_some_and(|(s, _)| *s < first) {
                    q.pop_front();
                }
                q.iter().fold(0u64, |a, (_, v)| a.saturating_add(*v))
            }
            // A budget whose window changed kind under the same key: start over.
            (e, span) => {
                *e = Entry::new(span);
                0
            }
        }
    }

    fn add(&mut self, span: &Span, delta: i64) {
        let apply = |v: &mut u64| {
            *v = if delta >= 0 {
                v.saturating_add(delta.unsigned_abs())
            } else {
                v.saturating_sub(delta.unsigned_abs())
            };
        };
        match (self, span) {
            (Entry::Fixed { spent, .. }, Span::Fixed { .. }) => apply(spent),
            (Entry::Sliding(q), Span::Sliding { slot, .. }) => {
                if let Some((_, v)) = q.iter_mut().find(|(s, _)| s == slot) {
                    apply(v);
                } else if delta > 0 {
                    // Keep slots ordered: a reservation always lands in the newest slot.
                    let at = q.iter().position(|(s, _)| s > slot).unwrap_or(q.len());
                    q.insert(at, (*slot, delta.unsigned_abs()));
                }
            }
            _ => {}
        }
    }

    fn expired(&self, now: SystemTime, max_slot: u64) -> bool {
        match self {
            Entry::Fixed { ends, .. } => *ends <= now,
            Entry::Sliding(q) => q.back().is_none_or(|(s, _)| *s < max_slot),
        }
    }
}

/// Budget spend in this process's memory: exact and atomic within the process (one lock), not
/// shared with replicas. Bounded: past `max_keys`, ended periods are dropped; if none has
/// ended, a reservation is a [`StoreError::Full`] (which the failure mode decides), never a
/// forgotten spend.
#[derive(Debug)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
    max_keys: usize,
    clock: Box<dyn Clock>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store of at most [`DEFAULT_MAX_KEYS`] keys on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// A store whose periods end by `clock` (the processor's clock).
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_keys: DEFAULT_MAX_KEYS,
            clock: Box::new(clock),
        }
    }

    /// At most `n` keys.
    #[must_use]
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n.max(1);
        self
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key<'a>(
        &self,
        map: &'a mut HashMap<String, Entry>,
        hold: &Hold,
    ) -> Result<&'a mut Entry, StoreError> {
        // Periods that ended are forgotten when they are next read.
        if let (Some(Entry::Fixed { ends, .. }), Span::Fixed { ends: now_ends, .. }) =
            (map.get(&hold.key), &hold.span)
            && ends != now_ends
        {
            map.remove(&hold.key);
        }
        if !map.contains_key(&hold.key) && map.len() >= self.max_keys {
            let now = self.clock.now();
            let newest = match hold.span {
                Span::Sliding { slot, slots, .. } => slot.saturating_sub(u64::from(slots)),
                Span::Fixed { .. } => 0,
            };
            map.retain(|_, e| !e.expired(now, newest));
            if map.len() >= self.max_keys {
                return Err(StoreError::Full(map.len()));
            }
        }
        Ok(map
            .entry(hold.key.clone())
            .or_insert_with(|| Entry::new(&hold.span)))
    }
}

#[async_trait]
impl BudgetStore for MemoryStore {
    async fn reserve(&self, holds: &[Hold]) -> Result<Verdict, StoreError> {
        let mut map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let mut spent = Vec::with_capacity(holds.len());
        let mut refused = None;
        for (i, h) in holds.iter().enumerate() {
            let s = self.key(&mut map, h)?.spent(&h.span);
            if refused.is_none() && s.saturating_add(h.amount) > h.limit {
                refused = Some(i);
            }
            spent.push(s);
        }
        if refused.is_some() {
            return Ok(Verdict {
                admitted: false,
                spent,
                refused,
            });
        }
        for (h, s) in holds.iter().zip(spent.iter_mut()) {
            let delta = i64::try_from(h.amount).unwrap_or(i64::MAX);
            self.key(&mut map, h)?.add(&h.span, delta);
            *s = s.saturating_add(h.amount);
        }
        Ok(Verdict {
            admitted: true,
            spent,
            refused: None,
        })
    }

    async fn adjust(&self, adjustments: &[(Hold, i64)]) -> Result<(), StoreError> {
        let mut map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for (h, delta) in adjustments {
            // A period that has ended keeps nothing: its key now belongs to the next period.
            if let (Some(Entry::Fixed { ends, .. }), Span::Fixed { ends: held, .. }) =
                (map.get(&h.key), &h.span)
                && ends != held
            {
                continue;
            }
            if let Some(e) = map.get_mut(&h.key) {
                e.add(&h.span, *delta);
            } else if *delta > 0 {
                let e = self.key(&mut map, h)?;
                e.add(&h.span, *delta);
            }
        }
        Ok(())
    }

    async fn spent(&self, holds: &[Hold]) -> Result<Vec<u64>, StoreError> {
        let mut map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(holds
            .iter()
            .map(|h| match map.get_mut(&h.key) {
                Some(Entry::Fixed { ends, .. })
                    if matches!(&h.span, Span::Fixed { ends: e, .. } if e != ends) =>
                {
                    0
                }
                Some(e) => e.spent(&h.span),
                None => 0,
            })
            .collect())
    }
}
