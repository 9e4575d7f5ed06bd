//! A compact, count-only byte-pair encoder with tiktoken's tables and algorithm.
//!
//! tiktoken-rs keeps every token three times (an encoder map of owned byte vectors, a decoder
//! map, a sorted list): about 50 MB resident for `o200k_base`. Counting needs only "what is the
//! rank of these bytes": here every token's bytes sit in one buffer, indexed by an
//! open-addressing table of ranks — about 5 MB. The tables are read once from tiktoken-rs
//! (whose own copy is then dropped), the pre-tokenising regex is tiktoken's, and the merge is
//! tiktoken's (the heap variant for long pieces), so counts are the same token for token.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use fancy_regex::Regex;
use xxhash_rust::xxh3::xxh3_64;

use crate::split::Split;

type Rank = u32;
const NONE: Rank = Rank::MAX;

/// A count-only encoder.
pub(crate) struct CompactBpe {
    /// Every token's bytes, back to back, in rank order.
    bytes: Vec<u8>,
    /// Where token `r` starts in `bytes` (`offs[r]..offs[r + 1]`).
    offs: Vec<u32>,
    /// Open addressing: a rank, or `NONE`; its length a power of two.
    table: Vec<Rank>,
    regex: Regex,
    /// The pattern by hand, for ASCII text (`regex` is its pattern, for the rest).
    split: Split,
}

impl std::fmt::Debug for CompactBpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactBpe")
            .field("tokens", &(self.offs.len().saturating_sub(1)))
            .finish_non_exhaustive()
    }
}

impl CompactBpe {
    /// Reads the ordinary tokens of `core` (ranks `0..` until the first gap) and drops it.
    pub(crate) fn from_core(core: &tiktoken_rs::CoreBPE, split: Split) -> Option<Self> {
        let mut bytes = Vec::with_capacity(2 << 20);
        let mut offs: Vec<u32> = vec![0];
        let mut rank: Rank = 0;
        while let Ok(b) = core.decode_bytes(&[rank]) {
            bytes.extend_from_slice(&b);
            offs.push(u32::try_from(bytes.len()).ok()?);
            rank = rank.checked_add(1)?;
        }
        bytes.shrink_to_fit();
        let n = offs.len() - 1;
        let size = (n.max(1) * 2).next_power_of_two();
        let mut me = Self {
            bytes,
            offs,
            table: vec![NONE; size],
            regex: Regex::new(split.pattern()).ok()?,
            split,
        };
        for r in 0..n {
            let r = Rank::try_from(r).ok()?;
            let key = me.token(r);
            let mask = me.table.len() - 1;
            let mut i = (xxh3_64(key) as usize) & mask;
            while me.table[i] != NONE {
                i = (i + 1) & mask;
            }
            me.table[i] = r;
        }
        Some(me)
    }

    fn token(&self, r: Rank) -> &[u8] {
        let r = r as usize;
        &self.bytes[self.offs[r] as usize..self.offs[r + 1] as usize]
    }

    /// The rank of exactly these bytes, if they are a token.
    fn rank(&self, piece: &[u8]) -> Rank {
        let mask = self.table.len() - 1;
        let mut i = (xxh3_64(piece) as usize) & mask;
        loop {
            let r = self.table[i];
            if r == NONE || self.token(r) == piece {
                return r;
            }
            i = (i + 1) & mask;
        }
    }

    /// Tokens in `text`, special-token text counted as ordinary text.
    pub(crate) fn count(&self, text: &str) -> u64 {
        let mut n: u64 = 0;
        if text.is_ascii() {
            self.split.pieces(text.as_bytes(), |piece| {
                n = n.saturating_add(self.piece(piece));
            });
            return n;
        }
        for m in self.regex.find_iter(text) {
            let Ok(m) = m else {
                // The regex gave up (backtrack limit): count the rest byte by byte, an upper
                // bound, rather than undercount.
                return n.saturating_add(text.len() as u64);
            };
            n = n.saturating_add(self.piece(m.as_str().as_bytes()));
        }
        n
    }

    /// Tokens in one piece of the pre-tokeniser's.
    fn piece(&self, piece: &[u8]) -> u64 {
        let c = if self.rank(piece) != NONE {
            1
        } else if piece.len() < 100 {
            self.merge_small(piece)
        } else {
            self.merge_large(piece)
        };
        c as u64
    }

    /// tiktoken's `_byte_pair_merge`: the number of tokens `piece` splits into.
    fn merge_small(&self, piece: &[u8]) -> usize {
        if piece.len() < 2 {
            return piece.len();
        }
        let mut parts: Vec<(usize, Rank)> = Vec::with_capacity(piece.len() + 1);
        let mut min: (Rank, usize) = (NONE, usize::MAX);
        for i in 0..piece.len() - 1 {
            let r = self.rank(&piece[i..i + 2]);
            if r < min.0 {
                min = (r, i);
            }
            parts.push((i, r));
        }
        parts.push((piece.len() - 1, NONE));
        parts.push((piece.len(), NONE));
        let get = |parts: &Vec<(usize, Rank)>, i: usize| {
            if i + 3 < parts.len() {
                self.rank(&piece[parts[i].0..parts[i + 3].0])
            } else {
                NONE
            }
        };
        while min.0 != NONE {
            let i = min.1;
            if i > 0 {
                parts[i - 1].1 = get(&parts, i - 1);
            }
            parts[i].1 = get(&parts, i);
            parts.remove(i + 1);
            min = (NONE, usize::MAX);
            for (i, &(_, r)) in parts[..parts.len() - 1].iter().enumerate() {
                if r < min.0 {
                    min = (r, i);
                }
            }
        }
        parts.len() - 1
    }

    /// tiktoken's `_byte_pair_merge_large` (a heap of candidate merges: O(m log n) for long
    /// pieces, where the simple merge is quadratic).
    fn merge_large(&self, piece: &[u8]) -> usize {
        #[derive(Clone, Copy)]
        struct State {
            prev: usize,
            end: usize,
            next_end: usize,
            next_rank: Rank,
        }
        #[derive(PartialEq, Eq)]
        struct Merge {
            start: usize,
            rank: Rank,
        }
        impl Ord for Merge {
            fn cmp(&self, o: &Self) -> Ordering {
                // A min-heap on (rank, start).
                o.rank
                    .cmp(&self.rank)
                    .then_with(|| o.start.cmp(&self.start))
            }
        }
        impl PartialOrd for Merge {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        let len = piece.len();
        let mut state: Vec<State> = Vec::with_capacity(len);
        state.push(State {
            prev: usize::MAX,
            end: 1,
            next_end: 2,
            next_rank: NONE,
        });
        let mut heap = BinaryHeap::with_capacity(len);
        for i in 0..len - 1 {
            let r = self.rank(&piece[i..i + 2]);
            if r != NONE {
                heap.push(Merge { start: i, rank: r });
                state[i].next_rank = r;
            }
            state.push(State {
                prev: i,
                end: i + 2,
                next_end: i + 3,
                next_rank: NONE,
            });
        }
        let potential =
            |state: &mut Vec<State>, heap: &mut BinaryHeap<Merge>, start: usize, ne: usize| {
                state[start].next_end = ne;
                state[start].next_rank = NONE;
                if ne <= len {
                    let r = self.rank(&piece[start..ne]);
                    if r != NONE {
                        heap.push(Merge { start, rank: r });
                        state[start].next_rank = r;
                    }
                }
            };
        let mut tokens = len;
        while let Some(left) = heap.pop() {
            if left.rank == NONE {
                break;
            }
            if left.rank != state[left.start].next_rank {
                continue;
            }
            let left_start = left.start;
            let right_start = state[left_start].end;
            let right_end = state[left_start].next_end;
            let right_next_end = state[right_start].next_end;
            state[left_start].end = right_end;
            potential(&mut state, &mut heap, left_start, right_next_end);
            if right_end < state.len() {
                state[right_end].prev = left_start;
            }
            if left_start > 0 {
                let prev_start = state[left_start].prev;
                potential(&mut state, &mut heap, prev_start, right_end);
            }
            state[right_start].next_rank = NONE;
            tokens -= 1;
        }
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random texts over a pool that exercises every branch of the
    /// patterns: letters of several scripts, digits, contractions, punctuation, whitespace runs.
    fn texts() -> Vec<String> {
        let pool = [
            "a",
            "b",
            "Z",
            "é",
            "ß",
            "東",
            "京",
            "д",
            "ж",
            "ا",
            "🙂",
            "👨‍👩‍👧",
            "0",
            "7",
            "42",
            "'s",
            "'LL",
            " ",
            "  ",
            "\n",
            "\r\n",
            "\t",
            ".",
            ",",
            "!?",
            "<|endoftext|>",
            "```",
            "{\"k\": 1}",
            "fn",
            "the",
            "The",
            "THE",
            "ing",
            "-",
            "/",
            "\u{0}",
        ];
        let mut out =
            crate::random_texts(&pool, &[1, 2, 5, 20, 80, 300], 60, 0x9e37_79b9_7f4a_7c15);
        // Long pieces: the heap merge.
        out.push("a".repeat(1000));
        out.push("ab".repeat(700));
        out.push(" ".repeat(500) + "x");
        out.push("1".repeat(999));
        out.push("abcdefghij".repeat(40));
        out.push("ṡ̷̨͉ö́m̸e̷ ̵z̶a̷l̴g̷o̷".repeat(30));
        out.push(String::new());
        out
    }

    #[test]
    fn counts_equal_tiktoken_token_for_token() {
        for (core, split) in [
            (tiktoken_rs::o200k_base().unwrap(), Split::O200k),
            (tiktoken_rs::cl100k_base().unwrap(), Split::Cl100k),
        ] {
            let c = CompactBpe::from_core(&core, split).unwrap();
            assert!(c.offs.len() > 100_000);
            for t in texts() {
                assert_eq!(c.count(&t), core.encode_ordinary(&t).len() as u64, "{t:?}");
            }
        }
    }
}
