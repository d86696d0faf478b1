//! Minimum hitting sets: the smallest sets of candidate faults that explain every symptom.
//!
//! Bounded: iterative deepening up to [`MAX_CARDINALITY`] faults per independent sub-problem
//! and at most [`SEARCH_BUDGET`] search nodes; beyond that a greedy cover (by coverage, then
//! priors) is returned and flagged as truncated. The branching picks the symptom with the
//! fewest explanations and, in branch i, excludes the explanations of branches < i, so every
//! set is found exactly once (no duplicates to sort out).

/// Largest explanation searched exhaustively per independent sub-problem.
pub(crate) const MAX_CARDINALITY: usize = 6;
/// Search nodes per call before falling back to a greedy cover.
pub(crate) const SEARCH_BUDGET: usize = 50_000;
/// Uncovered symptoms examined per search node to pick the one to branch on.
const SCAN_UNCOVERED: usize = 64;
/// Solutions of minimum size kept per sub-problem.
pub(crate) const MAX_SOLUTIONS: usize = 16;

/// A fixed-size bitset over symptoms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)])
    }
    pub(crate) fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    pub(crate) fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    pub(crate) fn or(&mut self, o: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= *b;
        }
    }
    pub(crate) fn first(&self) -> Option<usize> {
        self.0
            .iter()
            .position(|&w| w != 0)
            .map(|i| i * 64 + self.0[i].trailing_zeros() as usize)
    }
    pub(crate) fn intersects(&self, o: &Bits) -> bool {
        self.0.iter().zip(&o.0).any(|(a, b)| a & b != 0)
    }
    pub(crate) fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
    /// `self ⊇ o`.
    pub(crate) fn covers(&self, o: &Bits) -> bool {
        self.0.iter().zip(&o.0).all(|(a, b)| a & b == *b)
    }
    /// Number of bits of `o` not in `self`... i.e. |o \ self|.
    pub(crate) fn count_new(&self, o: &Bits) -> u32 {
        self.0
            .iter()
            .zip(&o.0)
            .map(|(a, b)| (b & !a).count_ones())
            .sum()
    }
}

/// The problem: `targets` symptoms (bit indices) to cover; candidates with their coverage and
/// a group (at most one candidate per group in a set: one mode per component).
pub(crate) struct Problem<'a> {
    pub targets: &'a [usize],
    pub cover: &'a [Bits],
    pub group: &'a [usize],
    /// For each symptom (bit index), the candidates explaining it, in preference order.
    pub explainers: &'a [Vec<usize>],
    /// Only these candidates may be used.
    pub allowed: &'a [bool],
}

pub(crate) struct Found {
    /// Sets of candidate indices (sorted), all of the same minimum size.
    pub sets: Vec<Vec<usize>>,
    pub truncated: bool,
}

struct Dfs<'p, 'a> {
    p: &'p Problem<'a>,
    k: usize,
    nodes: usize,
    out: Vec<Vec<usize>>,
    exhausted: bool,
    max_out: usize,
}

impl Dfs<'_, '_> {
    fn run(&mut self, covered: &Bits, chosen: &mut Vec<usize>, excluded: &mut Vec<bool>) {
        if self.out.len() >= self.max_out || self.exhausted {
            return;
        }
        self.nodes += 1;
        if self.nodes > SEARCH_BUDGET {
            self.exhausted = true;
            return;
        }
        // The uncovered symptom with the fewest usable explanations, among the first
        // `SCAN_UNCOVERED` uncovered ones (bounds the cost per node at thousands of symptoms;
        // only the branching order depends on it, never which sets are found).
        let mut best: Option<(usize, usize)> = None;
        let mut scanned = 0;
        for &t in self.p.targets {
            if covered.get(t) {
                continue;
            }
            scanned += 1;
            if scanned > SCAN_UNCOVERED {
                break;
            }
            let n = self.p.explainers.get(t).map_or(0, |e| {
                e.iter()
                    .filter(|&&c| self.usable(c, chosen, excluded))
                    .count()
            });
            if best.is_none_or(|(bn, _)| n < bn) {
                best = Some((n, t));
                if n == 0 {
                    break;
                }
            }
        }
        let Some((n, t)) = best else {
            let mut s = chosen.clone();
            s.sort_unstable();
            self.out.push(s);
            return;
        };
        if n == 0 || chosen.len() >= self.k {
            return;
        }
        let opts: Vec<usize> = self
            .p
            .explainers
            .get(t)
            .map(|e| {
                e.iter()
                    .copied()
                    .filter(|&c| self.usable(c, chosen, excluded))
                    .collect()
            })
            .unwrap_or_default();
        let mut newly_excluded = Vec::new();
        for c in opts {
            let mut cov = covered.clone();
            if let Some(b) = self.p.cover.get(c) {
                cov.or(b);
            }
            chosen.push(c);
            self.run(&cov, chosen, excluded);
            chosen.pop();
            if let Some(e) = excluded.get_mut(c) {
                *e = true;
            }
            newly_excluded.push(c);
        }
        for c in newly_excluded {
            if let Some(e) = excluded.get_mut(c) {
                *e = false;
            }
        }
    }

    fn usable(&self, c: usize, chosen: &[usize], excluded: &[bool]) -> bool {
        self.p.allowed.get(c).copied().unwrap_or(false)
            && !excluded.get(c).copied().unwrap_or(true)
            && !chosen
                .iter()
                .any(|&x| self.p.group.get(x) == self.p.group.get(c))
    }
}

/// All minimum-size covers (up to [`MAX_SOLUTIONS`]), or a greedy one when the search is
/// truncated by [`MAX_CARDINALITY`] or [`SEARCH_BUDGET`]. `k_from`/`k_to` bound the sizes.
pub(crate) fn min_covers(
    p: &Problem<'_>,
    nbits: usize,
    k_from: usize,
    k_to: usize,
    max_out: usize,
) -> Found {
    let mut nodes = 0;
    for k in k_from.max(1)..=k_to {
        let mut dfs = Dfs {
            p,
            k,
            nodes,
            out: Vec::new(),
            exhausted: false,
            max_out,
        };
        let mut excluded = vec![false; p.cover.len()];
        dfs.run(&Bits::new(nbits), &mut Vec::new(), &mut excluded);
        nodes = dfs.nodes;
        if !dfs.out.is_empty() {
            // A partial enumeration at this size still has only minimum-size sets.
            return Found {
                sets: dfs.out,
                truncated: dfs.exhausted,
            };
        }
        if dfs.exhausted {
            break;
        }
    }
    Found {
        sets: greedy(p, nbits).into_iter().collect(),
        truncated: true,
    }
}

/// Covers of exactly sizes `k_from..=k_to` (not only minimum), each found once, up to `max_out`;
/// used for rivals. Returns the sets and whether the budget ran out.
pub(crate) fn covers_upto(
    p: &Problem<'_>,
    nbits: usize,
    k_from: usize,
    k_to: usize,
    max_out: usize,
) -> Found {
    let mut all = Vec::new();
    let mut truncated = false;
    let mut nodes = 0;
    for k in k_from.max(1)..=k_to {
        let mut dfs = Dfs {
            p,
            k,
            nodes,
            out: Vec::new(),
            exhausted: false,
            max_out,
        };
        let mut excluded = vec![false; p.cover.len()];
        dfs.run(&Bits::new(nbits), &mut Vec::new(), &mut excluded);
        nodes = dfs.nodes;
        truncated |= dfs.exhausted;
        for s in dfs.out {
            if s.len() == k && !all.contains(&s) {
                all.push(s);
            }
        }
        if truncated || all.len() >= max_out {
            break;
        }
    }
    Found {
        sets: all,
        truncated,
    }
}

/// Greedy cover: repeatedly the usable candidate covering most uncovered symptoms (ties: the
/// earlier candidate, which callers order by priors). `None` if some symptom is uncoverable.
fn greedy(p: &Problem<'_>, nbits: usize) -> Option<Vec<usize>> {
    let mut covered = Bits::new(nbits);
    let mut target = Bits::new(nbits);
    for &t in p.targets {
        target.set(t);
    }
    let mut chosen: Vec<usize> = Vec::new();
    while !covered.covers(&target) {
        let mut best: Option<(u32, usize)> = None;
        for (c, cov) in p.cover.iter().enumerate() {
            if !p.allowed.get(c).copied().unwrap_or(false)
                || chosen.iter().any(|&x| p.group.get(x) == p.group.get(c))
            {
                continue;
            }
            let mut inter = cov.clone();
            for (a, b) in inter.0.iter_mut().zip(&target.0) {
                *a &= *b;
            }
            let gain = covered.count_new(&inter);
            if gain > 0 && best.is_none_or(|(g, _)| gain > g) {
                best = Some((gain, c));
            }
        }
        let (_, c) = best?;
        if let Some(b) = p.cover.get(c) {
            covered.or(b);
        }
        chosen.push(c);
    }
    chosen.sort_unstable();
    Some(chosen)
}
