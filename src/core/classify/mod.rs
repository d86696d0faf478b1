//! Consistency-based diagnosis (docs/diagnosis.md): the smallest set of component faults that explains
//! every fresh observation of every node, with its reasons.
//!
//! What it is for: [`classify`] takes the [`Topology`] (the model) and a [`ClusterView`] (what
//! `me` and its peers observe, from [`crate::core::evidence::Evidence::snapshot`]) and returns a
//! [`Diagnosis`]: verdict kind, subjects, faults, supporting observations (with time and
//! source), rival explanations with the observation that rules each out, ambiguity with the
//! alternatives and a hint which probe would settle it, and the stale evidence that was ignored.
//! What it must not do: keep state, read a clock, or depend on anything but its two inputs —
//! the same input gives the same output, in the same order. It never looks at `me` to break
//! ties, so two nodes with the same merged evidence reach the same verdict.
//!
//! Method:
//! 1. **Model** ([`model`]): components (nodes, attachments n.s, hubs, upstream of each network,
//!    serial lines, disks) and modes (node crashed/frozen — indistinguishable from outside,
//!    reported as "crashed or frozen"; attachment down/silent/tx-only/rx-only; hub down;
//!    upstream unreachable; serial down; disk failing/hung). Each observation is predicted as a
//!    conjunction: o hears p on s iff o and p up, p.s transmits, o.s receives, hub s up; o
//!    reaches R_s iff o.s transmits and receives, hub s up, upstream s up; carrier false iff
//!    o.s down (don't care under a dead hub); serial heard iff both ends up and the line up;
//!    a fresh view of p arrived ⇒ p up. Unknown and stale facts constrain nothing.
//! 2. **Symptoms** are observations that contradict the fault-free model; **candidates** are
//!    single faults that explain at least one symptom and contradict no positive observation
//!    (the first contradicting observation is kept: it is what rules that rival out). Because
//!    predictions are conjunctions, a set is consistent iff each member is and it covers every
//!    symptom: a minimum hitting set problem, exact with per-fault tables.
//! 3. **Decomposition**: symptoms linked by a shared candidate form independent sub-problems
//!    (typically one per network or per failed node); each is searched exhaustively by
//!    increasing cardinality (bounds in [`search`]). Candidates dominated by another mode of
//!    the same component are dropped.
//! 4. **Priors** break ties among equal-size explanations ([`model::prior`]): attachment <
//!    serial < upstream < hub < node; then fault order. Several minimal explanations ⇒
//!    `ambiguous`, the others in `alternatives` and a `settle_hint` naming a probe that tells
//!    them apart (computed by predicting hypothetical observations under each).
//! 5. **Degradation** (lossy/slow paths, slow disks, failing monitors) is diagnosed separately
//!    with the same hitting-set search over "degraded" facts; it never makes a failure.
//! 6. **Verdict**: all attachments of a node that is otherwise alive ⇒ `CutOff`; one
//!    component ⇒ its kind; several independent faults ⇒ `MultipleFaults`.
//!
//! API changes after publication are noted here:
//! - (none yet)

mod hint;
mod model;
mod search;
mod text;
mod types;

pub use types::*;

use crate::core::diagnosis::{Component, Fault, FaultMode, VerdictKind};
use crate::core::evidence::ClusterView;
use crate::core::topology::{NodeId, Topology};
use crate::core::view::DiskHealth;
use model::{Atom, Obs};
use search::{Bits, Problem};
use std::collections::{BTreeMap, BTreeSet};

/// Diagnose `view` over the `topology` model. Pure and deterministic.
pub fn classify(topology: &Topology, view: &ClusterView) -> Diagnosis {
    let t = topology;
    let me = view.me;
    let ex = model::extract(t, view);
    let mut d = Diagnosis::healthy(me, view.now, view.stale.clone(), t);

    // Nodes with positive evidence of being up; quiesced nodes without it are in maintenance.
    let mut up = vec![false; t.nodes.len()];
    for o in ex.obs.iter().filter(|o| o.value) {
        if let Atom::Alive { n: a } | Atom::Hears { p: a, .. } | Atom::Serial { p: a, .. } = o.atom
        {
            if let Some(u) = up.get_mut(a.index()) {
                *u = true;
            }
        }
    }
    let mut alive: BTreeSet<NodeId> = t.node_ids().filter(|n| up[n.index()]).collect();
    alive.insert(me);
    let maintenance: BTreeSet<NodeId> = view
        .quiesced
        .iter()
        .copied()
        .filter(|n| !alive.contains(n))
        .collect();
    d.maintenance = maintenance.iter().copied().collect();

    // Symptoms.
    let mut negs: Vec<&Obs> = Vec::new();
    for o in ex.obs.iter().filter(|o| !o.value) {
        let mut by_maintenance = false;
        model::breakers(o.atom, false, me, |f| {
            if let Component::Node(n) = f.component {
                by_maintenance |= maintenance.contains(&n);
            }
        });
        if !by_maintenance {
            negs.push(o);
        }
    }

    let mut faults: Vec<Fault> = Vec::new();
    let mut support_idx: Vec<usize> = Vec::new();
    if !negs.is_empty() {
        let sol = solve(t, me, &ex.obs, &negs);
        faults = sol.faults.clone();
        d.ambiguous = sol.ambiguous;
        d.rivals = sol.rivals;
        d.notes.extend(sol.notes);
        support_idx = sol.explained;
        let alts: Vec<Explanation> = sol
            .alternatives
            .iter()
            .map(|f| explanation(t, f, &alive))
            .collect();
        if d.ambiguous && !alts.is_empty() {
            d.settle_hint = hint::settle(t, me, &faults, &sol.alternatives);
        }
        d.alternatives = alts;
        d.alternatives.truncate(MAX_ALTERNATIVES);
    }

    // Disks: each disk observation involves only its own component — an independent
    // sub-problem whose single explanation is the disk itself.
    let mut disk_support = Vec::new();
    let mut degradations: Vec<Fault> = Vec::new();
    for &(n, h, at) in &ex.disks {
        let mode = match h {
            DiskHealth::Failing => FaultMode::Failing,
            DiskHealth::Hung => FaultMode::Hung,
            _ => FaultMode::Slow,
        };
        let f = Fault {
            component: Component::Disk(n),
            mode,
        };
        if mode == FaultMode::Slow {
            degradations.push(f);
        } else {
            faults.push(f);
        }
        disk_support.push(Support {
            fact: types::Fact::Disk { node: n, health: h },
            at,
            source: n,
            text: text::disk(t, n, h),
        });
    }
    faults.sort();
    faults.dedup();

    let (kind, subjects) = verdict(t, &faults, &alive);
    d.kind = kind;
    d.subjects = subjects;
    d.faults = faults;

    // Support: the explained symptoms, the liveness of a cut-off node, disk facts.
    // Texts only for what is listed: a hub failure at 64 nodes explains thousands of symptoms.
    let mut omitted = support_idx.len().saturating_sub(MAX_SUPPORT - 8);
    let mut support: Vec<Support> = support_idx
        .iter()
        .take(MAX_SUPPORT - 8)
        .filter_map(|&i| negs.get(i))
        .map(|o| text::support(t, o))
        .collect();
    if kind == VerdictKind::CutOff || kind == VerdictKind::MultipleFaults {
        for c in &d.subjects {
            if let Component::Node(n) = c {
                if let Some(o) = ex.obs.iter().find(|o| o.value && is_liveness_of(o, *n)) {
                    let s = text::support(t, o);
                    // "Why not simply: n2 crashed?" is the first question about a cut-off
                    // node. A node that reports is never a hypothesis of the search, so the
                    // answer is stated here, with the observation that shows it is up.
                    d.rivals.insert(
                        0,
                        Rival {
                            faults: vec![Fault {
                                component: *c,
                                mode: FaultMode::Crashed,
                            }],
                            reason: s.text.clone(),
                            ruled_out_by: Some(s.clone()),
                        },
                    );
                    d.rivals.truncate(MAX_RIVALS);
                    support.push(s);
                }
            }
        }
    }
    support.extend(disk_support);

    // Degradation.
    let (covers, deg_support) = degraded(t, &ex.quality, &d.faults);
    let degraded_ambiguous = covers.len() > 1;
    for c in &covers {
        degradations.extend(c.iter().copied());
    }
    degradations.sort();
    degradations.dedup();
    let mut monitor_nodes = BTreeSet::new();
    for (n, name, at) in &ex.monitors {
        monitor_nodes.insert(*n);
        support.push(Support {
            fact: types::Fact::MonitorFailing {
                node: *n,
                name: name.clone(),
            },
            at: *at,
            source: *n,
            text: format!("monitor {name} of {} fails", node_name(t, *n)),
        });
    }
    if d.kind == VerdictKind::Healthy && (!degradations.is_empty() || !monitor_nodes.is_empty()) {
        d.kind = VerdictKind::Degraded;
        let mut subj: Vec<Component> = degradations.iter().map(|f| f.component).collect();
        subj.extend(monitor_nodes.iter().map(|&n| Component::Node(n)));
        subj.sort();
        subj.dedup();
        d.subjects = subj;
        if degraded_ambiguous {
            // Name every candidate rather than pick one by node order.
            d.ambiguous = true;
            d.alternatives = covers
                .iter()
                .map(|c| Explanation {
                    kind: VerdictKind::Degraded,
                    subjects: c.iter().map(|f| f.component).collect(),
                    faults: c.clone(),
                })
                .collect();
            d.alternatives.truncate(MAX_ALTERNATIVES);
            d.settle_hint = Some(
                "a third node on the same network (each NIC then seen from two peers) would tell them apart"
                    .to_string(),
            );
        }
    }
    if !degradations.is_empty() {
        support.extend(deg_support);
    }
    for n in &d.maintenance {
        support.push(Support {
            fact: types::Fact::Quiesced { node: *n },
            at: view.now,
            source: *n,
            text: format!("{} announced planned maintenance", node_name(t, *n)),
        });
    }
    d.degradations = degradations;
    omitted += support.len().saturating_sub(MAX_SUPPORT);
    d.support_omitted = omitted;
    support.truncate(MAX_SUPPORT);
    d.support = support;

    if d.faults
        .iter()
        .any(|f| matches!(f.component, Component::Serial(..)))
    {
        d.notes.push("diagnostic capacity reduced: the serial line can no longer confirm liveness or carry agreement if the networks fail".to_string());
    }
    if t.serial_lines().is_empty() && d.kind == VerdictKind::NodeFailed {
        d.notes.push("no serial line: a node that is cut off from every network cannot be told apart from a crashed one (a fence device or a third node would)".to_string());
    }
    d
}

fn is_liveness_of(o: &Obs, n: NodeId) -> bool {
    match o.atom {
        Atom::Alive { n: a } => a == n,
        Atom::Serial { o: a, p } => a == n || p == n,
        _ => false,
    }
}

/// Map a fault set to a verdict kind and subjects (canonical order).
pub(crate) fn verdict(
    t: &Topology,
    faults: &[Fault],
    alive: &BTreeSet<NodeId>,
) -> (VerdictKind, Vec<Component>) {
    let mut groups: Vec<(VerdictKind, Component)> = Vec::new();
    let mut cut: BTreeSet<NodeId> = BTreeSet::new();
    let mut by_node: BTreeMap<NodeId, usize> = BTreeMap::new();
    for f in faults {
        if let Component::Attachment(n, _) = f.component {
            *by_node.entry(n).or_default() += 1;
        }
    }
    for (&n, &count) in &by_node {
        let total = t
            .nodes
            .get(n.index())
            .map_or(usize::MAX, |s| s.interfaces.len());
        let node_failed = faults.iter().any(|f| f.component == Component::Node(n));
        if count >= total && total > 0 && !node_failed && (alive.contains(&n) || count > 1) {
            cut.insert(n);
            groups.push((VerdictKind::CutOff, Component::Node(n)));
        }
    }
    for f in faults {
        let g = match f.component {
            Component::Attachment(n, _) if cut.contains(&n) => continue,
            Component::Attachment(..) => VerdictKind::AttachmentFailed,
            Component::Node(_) => VerdictKind::NodeFailed,
            Component::Hub(_) => VerdictKind::HubFailed,
            Component::Upstream(_) => VerdictKind::UpstreamFailed,
            Component::Serial(..) => VerdictKind::SerialFailed,
            Component::Disk(_) => VerdictKind::DiskFailed,
        };
        groups.push((g, f.component));
    }
    let mut subjects: Vec<Component> = groups.iter().map(|g| g.1).collect();
    subjects.sort();
    subjects.dedup();
    let kind = match groups.as_slice() {
        [] => VerdictKind::Healthy,
        [(k, _)] => *k,
        _ => VerdictKind::MultipleFaults,
    };
    (kind, subjects)
}

fn explanation(t: &Topology, faults: &[Fault], alive: &BTreeSet<NodeId>) -> Explanation {
    let (kind, subjects) = verdict(t, faults, alive);
    Explanation {
        kind,
        subjects,
        faults: faults.to_vec(),
    }
}

struct Solved {
    faults: Vec<Fault>,
    alternatives: Vec<Vec<Fault>>,
    ambiguous: bool,
    /// Indices into `negs` explained by the chosen faults.
    explained: Vec<usize>,
    rivals: Vec<Rival>,
    notes: Vec<String>,
}

/// Covers found by the search (candidate indices) as sorted fault lists.
fn fault_sets(sets: &[Vec<usize>], cands: &[Fault]) -> Vec<Vec<Fault>> {
    sets.iter()
        .map(|s| {
            let mut fs: Vec<Fault> = s.iter().map(|&c| cands[c]).collect();
            fs.sort();
            fs
        })
        .collect()
}

fn cost(fs: &[Fault]) -> u32 {
    fs.iter().map(model::prior).sum()
}

/// Solve the network/serial part: candidates, rule-outs, decomposition, search, rivals.
fn solve(t: &Topology, me: NodeId, obs: &[Obs], negs: &[&Obs]) -> Solved {
    let dense = model::Dense::new(t);
    let mut slot: Vec<u32> = vec![u32::MAX; dense.size()];
    let mut cands: Vec<Fault> = Vec::new();
    let mut cover: Vec<Bits> = Vec::new();
    let nbits = negs.len();
    let mut explainers: Vec<Vec<usize>> = vec![Vec::new(); nbits];
    for (i, o) in negs.iter().enumerate() {
        model::breakers(o.atom, false, me, |f| {
            let Some(di) = dense.index(&f) else { return };
            let Some(s) = slot.get_mut(di) else { return };
            if *s == u32::MAX {
                *s = cands.len() as u32;
                cands.push(f);
                cover.push(Bits::new(nbits));
            }
            let c = *s as usize;
            if let Some(b) = cover.get_mut(c) {
                b.set(i);
            }
            if let Some(e) = explainers.get_mut(i) {
                if !e.contains(&c) {
                    e.push(c);
                }
            }
        });
    }
    // Rule-outs: the most telling positive observation contradicting each candidate.
    let mut ruled: Vec<Option<(u8, usize)>> = vec![None; cands.len()];
    for (oi, o) in obs.iter().enumerate().filter(|(_, o)| o.value) {
        let rank = o.atom.cite_rank();
        model::breakers(o.atom, true, me, |f| {
            let Some(di) = dense.index(&f) else { return };
            let Some(&s) = slot.get(di) else { return };
            if s == u32::MAX {
                return;
            }
            if let Some(r) = ruled.get_mut(s as usize) {
                if r.is_none_or(|(br, bi)| (rank, oi) < (br, bi)) {
                    *r = Some((rank, oi));
                }
            }
        });
    }
    let n = cands.len();
    // Component groups (one mode per component in a set).
    let mut comp_ids: BTreeMap<Component, usize> = BTreeMap::new();
    let group: Vec<usize> = cands
        .iter()
        .map(|f| {
            let next = comp_ids.len();
            *comp_ids.entry(f.component).or_insert(next)
        })
        .collect();
    let consistent: Vec<bool> = ruled.iter().map(|r| r.is_none()).collect();
    // Dominance: drop a mode whose coverage another consistent mode of the same component
    // covers (on equal coverage keep the likelier).
    let mut allowed = consistent.clone();
    let mut members_of: Vec<Vec<usize>> = vec![Vec::new(); comp_ids.len()];
    for (c, &g) in group.iter().enumerate() {
        members_of[g].push(c);
    }
    for a in 0..n {
        if !consistent[a] {
            continue;
        }
        for &b in &members_of[group[a]] {
            if a == b || !allowed[b] || !consistent[b] {
                continue;
            }
            let (ca, cb) = (&cover[a], &cover[b]);
            if cb.covers(ca) {
                let strictly = !ca.covers(cb);
                let better =
                    (model::prior(&cands[b]), cands[b]) < (model::prior(&cands[a]), cands[a]);
                if strictly || better {
                    allowed[a] = false;
                    break;
                }
            }
        }
    }
    // Explanations of each symptom in preference order.
    for e in explainers.iter_mut() {
        e.sort_by_key(|&c| (model::prior(&cands[c]), cands[c]));
    }
    // Decomposition into independent sub-problems (union-find over symptoms).
    let mut parent: Vec<usize> = (0..nbits).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut notes = Vec::new();
    let mut unexplained = Vec::new();
    let first_bit: Vec<Option<usize>> = cover.iter().map(Bits::first).collect();
    for (i, e) in explainers.iter().enumerate() {
        let usable: Vec<usize> = e.iter().copied().filter(|&c| allowed[c]).collect();
        if usable.is_empty() {
            unexplained.push(i);
        }
        for c in usable {
            // Union i with the first symptom this candidate covers.
            if let Some(first) = first_bit[c] {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, first));
                if ri != rj {
                    parent[ri.max(rj)] = ri.min(rj);
                }
            }
        }
    }
    let mut subs: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..nbits {
        if unexplained.contains(&i) {
            continue;
        }
        let r = find(&mut parent, i);
        subs.entry(r).or_default().push(i);
    }
    for &i in unexplained.iter().take(4) {
        if let Some(o) = negs.get(i) {
            notes.push(format!(
                "inconsistent observation ignored (no single fault explains it without contradicting another): {}",
                text::obs_text(t, o)
            ));
        }
    }

    let mut chosen: Vec<Fault> = Vec::new();
    let mut per_sub: Vec<(Vec<usize>, Vec<Vec<Fault>>)> = Vec::new();
    let mut ambiguous = false;
    let mut explained = Vec::new();
    for targets in subs.values() {
        let p = Problem {
            targets,
            cover: &cover,
            group: &group,
            explainers: &explainers,
            allowed: &allowed,
        };
        let found =
            search::min_covers(&p, nbits, 1, search::MAX_CARDINALITY, search::MAX_SOLUTIONS);
        if found.truncated {
            notes.push(format!(
                "search bounded ({} symptoms): explanation found greedily and may not be minimal",
                targets.len()
            ));
        }
        let mut sols = fault_sets(&found.sets, &cands);
        sols.sort_by(|a, b| (cost(a), a).cmp(&(cost(b), b)));
        // Same components with other modes are not a different explanation.
        let mut seen: BTreeSet<Vec<Component>> = BTreeSet::new();
        sols.retain(|s| seen.insert(s.iter().map(|f| f.component).collect()));
        if sols.len() > 1 || found.truncated {
            ambiguous = true;
        }
        if let Some(best) = sols.first() {
            chosen.extend(best.iter().copied());
            explained.extend(targets.iter().copied());
        }
        per_sub.push((targets.clone(), sols));
    }
    chosen.sort();
    let mut alternatives = Vec::new();
    for (_, sols) in &per_sub {
        let Some(best) = sols.first() else { continue };
        for alt in sols.iter().skip(1) {
            let mut fs: Vec<Fault> = chosen
                .iter()
                .copied()
                .filter(|f| !best.contains(f))
                .collect();
            fs.extend(alt.iter().copied());
            fs.sort();
            alternatives.push(fs);
        }
    }
    alternatives.truncate(MAX_ALTERNATIVES);
    explained.sort_unstable();

    let ctx = RivalCtx {
        t,
        obs,
        negs,
        cands: &cands,
        cover: &cover,
        ruled: &ruled,
        consistent: &consistent,
        nbits,
    };
    let mut rivals = Vec::new();
    for (targets, sols) in &per_sub {
        rivals.extend(ctx.rivals(targets, sols));
        if rivals.len() >= MAX_RIVALS {
            break;
        }
    }
    rivals.truncate(MAX_RIVALS);
    Solved {
        faults: chosen,
        alternatives,
        ambiguous,
        explained,
        rivals,
        notes,
    }
}

/// (size, prior cost, faults, rival, contradicted component) — for ordering and de-duplication.
type RankedRival = (usize, u32, Vec<Fault>, Rival, Option<Component>);

struct RivalCtx<'a> {
    t: &'a Topology,
    obs: &'a [Obs],
    negs: &'a [&'a Obs],
    cands: &'a [Fault],
    cover: &'a [Bits],
    ruled: &'a [Option<(u8, usize)>],
    consistent: &'a [bool],
    nbits: usize,
}

impl RivalCtx<'_> {
    /// Rival explanations of one sub-problem: minimal covers by components (any mode, ruled
    /// out or not) of the solution's size and the next, that are not solutions; if none, one
    /// size more. Each with the observation that rules it out.
    fn rivals(&self, targets: &[usize], sols: &[Vec<Fault>]) -> Vec<Rival> {
        let Some(best) = sols.first() else {
            return Vec::new();
        };
        let k = best.len();
        // Component-level candidates touching this sub-problem.
        let mut comps: BTreeMap<Component, Vec<usize>> = BTreeMap::new();
        let mut tbits = Bits::new(self.nbits);
        for &i in targets {
            tbits.set(i);
        }
        for (c, f) in self.cands.iter().enumerate() {
            if self.cover[c].intersects(&tbits) {
                comps.entry(f.component).or_default().push(c);
            }
        }
        let comp_list: Vec<Component> = comps.keys().copied().collect();
        let mut ccover: Vec<Bits> = Vec::new();
        for modes in comps.values() {
            let mut b = Bits::new(self.nbits);
            for &c in modes {
                b.or(&self.cover[c]);
            }
            ccover.push(b);
        }
        let mut cexpl: Vec<Vec<usize>> = vec![Vec::new(); self.nbits];
        for (ci, b) in ccover.iter().enumerate() {
            for &i in targets {
                if b.get(i) {
                    if let Some(e) = cexpl.get_mut(i) {
                        e.push(ci);
                    }
                }
            }
        }
        let group: Vec<usize> = (0..comp_list.len()).collect();
        let allowed = vec![true; comp_list.len()];
        let p = Problem {
            targets,
            cover: &ccover,
            group: &group,
            explainers: &cexpl,
            allowed: &allowed,
        };
        let sol_sets: Vec<BTreeSet<Component>> = sols
            .iter()
            .map(|s| s.iter().map(|f| f.component).collect())
            .collect();
        let mut out: Vec<RankedRival> = Vec::new();
        // From size 1: a smaller explanation that was ruled out is the first rival an operator
        // asks about ("why not simply node n2 down?").
        for (lo, hi) in [(1, k + 1), (k + 2, k + 2)] {
            let found = search::covers_upto(&p, self.nbits, lo, hi, 32);
            for set in found.sets {
                let comps_set: BTreeSet<Component> = set
                    .iter()
                    .filter_map(|&ci| comp_list.get(ci).copied())
                    .collect();
                if sol_sets.iter().any(|s| s.is_subset(&comps_set))
                    || !self.minimal(&set, &ccover, targets)
                {
                    continue;
                }
                if let Some((r, blocker)) = self.judge(&comps_set, &comps, targets, k) {
                    out.push((
                        r.faults.len(),
                        cost(&r.faults),
                        r.faults.clone(),
                        r,
                        blocker,
                    ));
                }
            }
            if !out.is_empty() {
                break;
            }
        }
        out.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        // One rival per contradicted component is enough to show why that component is out;
        // consistent-but-larger rivals are all kept.
        let mut blamed: BTreeSet<Component> = BTreeSet::new();
        out.into_iter()
            .filter(|x| match &x.4 {
                Some(c) => blamed.insert(*c),
                None => true,
            })
            .map(|x| x.3)
            .take(MAX_RIVALS)
            .collect()
    }

    fn minimal(&self, set: &[usize], ccover: &[Bits], targets: &[usize]) -> bool {
        set.iter().all(|&skip| {
            let mut b = Bits::new(self.nbits);
            for &c in set.iter().filter(|&&c| c != skip) {
                b.or(&ccover[c]);
            }
            !targets.iter().all(|&i| b.get(i))
        })
    }

    fn judge(
        &self,
        set: &BTreeSet<Component>,
        comps: &BTreeMap<Component, Vec<usize>>,
        targets: &[usize],
        k: usize,
    ) -> Option<(Rival, Option<Component>)> {
        let mut faults = Vec::new();
        let mut blocker: Option<(u8, usize, Fault)> = None;
        let mut surviving = Bits::new(self.nbits);
        for comp in set {
            let modes = comps.get(comp)?;
            // Display mode: the widest-covering consistent mode, else the widest mode.
            let widest = |ms: &mut dyn Iterator<Item = usize>| {
                ms.max_by(|&a, &b| {
                    (
                        self.cover[a].count(),
                        std::cmp::Reverse(model::prior(&self.cands[a])),
                    )
                        .cmp(&(
                            self.cover[b].count(),
                            std::cmp::Reverse(model::prior(&self.cands[b])),
                        ))
                })
            };
            let ok: Vec<usize> = modes
                .iter()
                .copied()
                .filter(|&c| self.consistent[c])
                .collect();
            for &c in &ok {
                surviving.or(&self.cover[c]);
            }
            let shown =
                widest(&mut ok.iter().copied()).or_else(|| widest(&mut modes.iter().copied()))?;
            faults.push(self.cands[shown]);
            if ok.is_empty() {
                if let Some((rank, oi)) = self.ruled[shown] {
                    if blocker.is_none_or(|(br, bi, _)| (rank, oi) < (br, bi)) {
                        blocker = Some((rank, oi, self.cands[shown]));
                    }
                }
            }
        }
        faults.sort();
        if let Some((_, oi, f)) = blocker {
            let o = self.obs.get(oi)?;
            let s = text::support(self.t, o);
            let reason = if set.len() > 1 {
                format!(
                    "{} is contradicted: {}",
                    f.component.describe(self.t),
                    s.text
                )
            } else {
                s.text.clone()
            };
            return Some((
                Rival {
                    faults,
                    ruled_out_by: Some(s),
                    reason,
                },
                Some(f.component),
            ));
        }
        if let Some(&i) = targets.iter().find(|&&i| !surviving.get(i)) {
            let o = self.negs.get(i)?;
            let s = text::support(self.t, o);
            let reason = format!("does not explain that {}", s.text);
            return Some((
                Rival {
                    faults,
                    ruled_out_by: Some(s),
                    reason,
                },
                None,
            ));
        }
        if set.len() > k {
            let reason = format!(
                "consistent, but needs {} faults where {} suffice{}",
                set.len(),
                k,
                if k == 1 { "s" } else { "" }
            );
            return Some((
                Rival {
                    faults,
                    ruled_out_by: None,
                    reason,
                },
                None,
            ));
        }
        None
    }
}

/// Degradation: lossy/slow attachments or hubs as the smallest cover of the "degraded" facts,
/// preferring covers no healthy path contradicts. Components already failed are not blamed.
fn degraded(
    t: &Topology,
    quality: &[(
        NodeId,
        NodeId,
        crate::core::topology::NetworkId,
        bool,
        crate::core::time::Instant,
    )],
    failed: &[Fault],
) -> (Vec<Vec<Fault>>, Vec<Support>) {
    let bad: Vec<usize> = (0..quality.len()).filter(|&i| quality[i].3).collect();
    if bad.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let nbits = bad.len();
    let mut cands: Vec<Fault> = Vec::new();
    let mut cover: Vec<Bits> = Vec::new();
    let mut explainers: Vec<Vec<usize>> = vec![Vec::new(); nbits];
    for (bi, &qi) in bad.iter().enumerate() {
        let (o, p, s, _, _) = quality[qi];
        for comp in [
            Component::Attachment(o, s),
            Component::Attachment(p, s),
            Component::Hub(s),
        ] {
            let f = Fault {
                component: comp,
                mode: FaultMode::Lossy,
            };
            let c = match cands.iter().position(|x| *x == f) {
                Some(c) => c,
                None => {
                    cands.push(f);
                    cover.push(Bits::new(nbits));
                    cands.len() - 1
                }
            };
            cover[c].set(bi);
            explainers[bi].push(c);
        }
    }
    let failed_comps: BTreeSet<Component> = failed.iter().map(|f| f.component).collect();
    let healthy = |f: &Fault| {
        quality.iter().any(|&(o, p, s, deg, _)| {
            !deg && match f.component {
                Component::Attachment(n, net) => net == s && (n == o || n == p),
                Component::Hub(net) => net == s,
                _ => false,
            }
        })
    };
    for e in explainers.iter_mut() {
        e.sort_by_key(|&c| (model::prior(&cands[c]), cands[c]));
    }
    let group: Vec<usize> = (0..cands.len()).collect();
    let targets: Vec<usize> = (0..nbits).collect();
    let strict: Vec<bool> = cands
        .iter()
        .map(|f| !failed_comps.contains(&f.component) && !healthy(f))
        .collect();
    let loose: Vec<bool> = cands
        .iter()
        .map(|f| !failed_comps.contains(&f.component))
        .collect();
    // Every equally likely cover (same cost): more than one means the evidence cannot tell
    // them apart (e.g. two nodes, one lossy path: either NIC or the hub).
    let mut chosen: Vec<Vec<Fault>> = Vec::new();
    for allowed in [&strict, &loose] {
        let p = Problem {
            targets: &targets,
            cover: &cover,
            group: &group,
            explainers: &explainers,
            allowed,
        };
        let found = search::min_covers(&p, nbits, 1, 3, MAX_ALTERNATIVES + 1);
        let mut sets = fault_sets(&found.sets, &cands);
        sets.sort_by_key(|fs| (cost(fs), fs.clone()));
        if let Some(best) = sets.first().map(|fs| cost(fs)) {
            sets.retain(|fs| cost(fs) == best);
            sets.dedup();
            chosen = sets;
            break;
        }
    }
    let support = bad
        .iter()
        .take(MAX_SUPPORT)
        .map(|&qi| {
            let (o, p, s, _, at) = quality[qi];
            Support {
                fact: types::Fact::Degraded {
                    observer: o,
                    peer: p,
                    network: s,
                    degraded: true,
                },
                at,
                source: o,
                text: format!(
                    "{} hears {} on {} with loss or RTT above threshold",
                    node_name(t, o),
                    node_name(t, p),
                    net_name(t, s)
                ),
            }
        })
        .collect();
    (chosen, support)
}

#[cfg(test)]
mod testutil;

#[cfg(test)]
mod tests;
