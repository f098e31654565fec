//! IR ⇄ e-graph: loading a function into an e-graph and extracting the cheapest function
//! back out, with locations.
//!
//! [`load`] adds the function's parameters as [`Node::Arg`] leaves and every op of the body,
//! in order, as a [`Node::Op`] (a multi-result op as one tuple node and a
//! [`Node::Result`] projection per result). It remembers, for every op, the node it added
//! and its location.
//!
//! [`extract`] picks the cheapest node of every e-class under the static cost model
//! ([`super::cost`]) and rebuilds a function from the returns down:
//!
//! - **Determinism.** Best nodes are chosen by (cost, node order) over classes visited in
//!   id order, and ops are emitted by a Kahn topological order keyed by the original body
//!   position, so the same input gives the same output byte for byte. No `HashMap`
//!   iteration order reaches the result (egg's own maps use a fixed hasher, and we only
//!   read them by key or after sorting).
//! - **Locations.** An op that comes out unchanged (the chosen node is the node an
//!   original op added, up to congruence) keeps that op's location. A new op gets the
//!   fused location of the original ops of its class and of every original op whose
//!   class it made unnecessary (the classes reachable from its class's original nodes that
//!   the result no longer uses). A new op in a class without original ops (a reshape a
//!   rule built for a scale) takes the location of the op that uses it.
//! - **No change, no churn.** When the result has exactly the original ops, the caller
//!   keeps the original function untouched ([`Extracted::changed`] is false).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use egg::{Id, Language};
use lowbit_dialects::ir::{Func, Loc, Op, Value};

use super::analysis::{Graph, TypeAnalysis};
use super::cost::node_cost;
use super::lang::{AttrKey, Node};

/// One op of the loaded function.
#[derive(Clone, Debug)]
pub struct Original {
    /// The op in the original function.
    pub op: Op,
    /// The node added for it (children as added; canonicalize with `find` to compare).
    pub node: Node,
    /// The id `add` returned (uncanonical when explanations are on).
    pub id: Id,
    /// Its location.
    pub loc: Loc,
}

/// A function loaded into an e-graph.
pub struct Loaded {
    /// The e-graph (analysis: [`TypeAnalysis`]).
    pub egraph: Graph,
    /// The classes of the returned values, in order.
    pub roots: Vec<Id>,
    /// Every op of the body, in body order.
    pub originals: Vec<Original>,
}

/// Loads `func` into a fresh e-graph (with egg explanations when `explanations`).
pub fn load(func: &Func, explanations: bool) -> Loaded {
    let mut egraph = Graph::new(TypeAnalysis::new(func.param_types()));
    if explanations {
        egraph = egraph.with_explanations_enabled();
    }
    let (roots, originals) = add_func(&mut egraph, func);
    egraph.rebuild();
    Loaded {
        egraph,
        roots,
        originals,
    }
}

/// Adds `func`'s ops to `egraph`, whose analysis must have `func`'s parameter types;
/// returns the classes of its returned values and its ops. Adding a second function with
/// the same parameters to the same e-graph is how start ⇒ goal tests compare terms.
pub fn add_func(egraph: &mut Graph, func: &Func) -> (Vec<Id>, Vec<Original>) {
    let mut ids: cranelift_entity::SecondaryMap<Value, Option<Id>> =
        cranelift_entity::SecondaryMap::new();
    for (i, &p) in func.params.iter().enumerate() {
        ids[p] = Some(egraph.add_uncanonical(Node::Arg(i as u32)));
    }
    let mut originals = Vec::with_capacity(func.body.len());
    for &op in &func.body {
        let d = &func.ops[op];
        let children = d
            .args
            .iter()
            .map(|&a| ids[a].expect("verified: operands are defined before use"))
            .collect();
        let types = d.results.iter().map(|&r| func.ty(r).clone()).collect();
        let node = Node::op(d.opcode, AttrKey::from_attrs(&d.attrs), types, children);
        let id = egraph.add_uncanonical(node.clone());
        if d.results.len() == 1 {
            ids[d.results[0]] = Some(id);
        } else {
            for (i, &r) in d.results.iter().enumerate() {
                ids[r] = Some(egraph.add_uncanonical(Node::Result(i as u32, [id])));
            }
        }
        originals.push(Original {
            op,
            node,
            id,
            loc: d.loc.clone(),
        });
    }
    let roots = func
        .rets
        .iter()
        .map(|&r| ids[r].expect("verified: returns are defined"))
        .collect();
    (roots, originals)
}

/// The extracted function and what changed.
pub struct Extracted {
    /// The new function (equal in meaning to the original).
    pub func: Func,
    /// Whether it differs from the original at all.
    pub changed: bool,
    /// Ops that are new (no original op had their node).
    pub new_ops: u64,
    /// Original ops that are gone (rewritten away, merged, or dead).
    pub removed_ops: u64,
    /// For each new op of `func` that replaced an original op: (the new op, the original
    /// op's id) — what explanations compare.
    pub replaced: Vec<(Op, Id)>,
    /// Cost of the result: the sum of its roots' class costs (see [`best_nodes`]).
    pub cost: f64,
    /// Where each op of `func.body` comes from, in body order.
    pub origins: Vec<Origin>,
}

/// Where an extracted op comes from, as indices into [`Loaded::originals`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The original op it is (same node up to congruence), if any: it kept its location.
    pub kept: Option<usize>,
    /// The original ops of its e-class, in order (the first one's position orders the
    /// output).
    pub class: Vec<usize>,
}

/// A node's cost for extraction: the cost model's, plus one per op so that fewer ops win
/// ties and no cycle of free ops (reshapes) can ever look as cheap as its way out.
fn choice_cost(egraph: &Graph, node: &Node) -> f64 {
    let op = if matches!(node, Node::Op(_)) {
        1.0
    } else {
        0.0
    };
    node_cost(egraph, node).total() + op
}

/// The cheapest node of every class.
///
/// The cost of a class is its cheapest node's cost plus its operands' class costs, each
/// divided by the number of classes that use that operand (to a fixed point). Plain tree
/// cost (no division) doubles at every shared operand, so a deep residual stack reaches
/// magnitudes where `f64` can no longer tell two alternatives apart (48 blocks already
/// did); splitting a shared operand's cost among its users keeps every class cost below
/// the DAG cost of the whole graph, in one linear-time fixed point, and alternatives in a
/// class still differ by exactly their local costs. Ties go to the smaller node in the
/// language's order.
pub fn best_nodes(egraph: &Graph) -> BTreeMap<Id, (f64, Node)> {
    let mut ids: Vec<Id> = egraph.classes().map(|c| c.id).collect();
    ids.sort();
    // Users per class: distinct parent classes.
    let mut users: BTreeMap<Id, f64> = BTreeMap::new();
    for &id in &ids {
        let kids: BTreeSet<Id> = egraph[id]
            .nodes
            .iter()
            .flat_map(|n| n.children().iter().map(|&c| egraph.find(c)))
            .collect();
        for k in kids {
            *users.entry(k).or_insert(0.0) += 1.0;
        }
    }
    let mut best: BTreeMap<Id, (f64, Node)> = BTreeMap::new();
    loop {
        let mut changed = false;
        for &id in &ids {
            for node in &egraph[id].nodes {
                let Some(child_cost) = node
                    .children()
                    .iter()
                    .map(|c| {
                        let c = egraph.find(*c);
                        best.get(&c)
                            .map(|b| b.0 / users.get(&c).copied().unwrap_or(1.0))
                    })
                    .sum::<Option<f64>>()
                else {
                    continue;
                };
                let cost = choice_cost(egraph, node) + child_cost;
                let better = match best.get(&id) {
                    None => true,
                    Some((c, n)) => cost < *c || (cost == *c && node < n),
                };
                // Only a change of node can close a cycle, and not a first choice: no chosen
                // node uses a class without one.
                let same_or_first = best.get(&id).is_none_or(|(_, n)| n == node);
                if better && (same_or_first || !reaches(egraph, &best, node, id)) {
                    best.insert(id, (cost, node.clone()));
                    changed = true;
                }
            }
        }
        if !changed {
            return best;
        }
    }
}

/// Whether choosing `node` for class `id` would close a cycle: `id` is reachable from
/// `node`'s operands through the current choices.
fn reaches(egraph: &Graph, best: &BTreeMap<Id, (f64, Node)>, node: &Node, id: Id) -> bool {
    let mut seen: Vec<bool> = Vec::new();
    let mut stack: Vec<Id> = node.children().iter().map(|&c| egraph.find(c)).collect();
    while let Some(c) = stack.pop() {
        if c == id {
            return true;
        }
        let i = usize::from(c);
        if i >= seen.len() {
            seen.resize(i + 1, false);
        }
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        if let Some((_, n)) = best.get(&c) {
            stack.extend(n.children().iter().map(|&k| egraph.find(k)));
        }
    }
    false
}

/// Rebuilds the cheapest function equal to `original` from `loaded` (after rules ran).
pub fn extract(loaded: &Loaded, original: &Func) -> Extracted {
    let eg = &loaded.egraph;
    let best = best_nodes(eg);
    let chosen = |c: Id| -> &Node { &best[&eg.find(c)].1 };
    let roots: Vec<Id> = loaded.roots.iter().map(|&r| eg.find(r)).collect();

    // Classes the result uses, and its cost.
    let mut used: BTreeSet<Id> = BTreeSet::new();
    let mut stack: Vec<Id> = roots.clone();
    while let Some(c) = stack.pop() {
        if used.insert(c) {
            stack.extend(chosen(c).children().iter().map(|&k| eg.find(k)));
        }
    }
    let cost = roots.iter().map(|r| best[r].0).sum();

    // Original ops per class, with their canonical nodes.
    let mut by_class: BTreeMap<Id, Vec<(usize, Node)>> = BTreeMap::new();
    for (i, o) in loaded.originals.iter().enumerate() {
        let canon = o.node.clone().map_children(|c| eg.find(c));
        by_class.entry(eg.find(o.id)).or_default().push((i, canon));
    }

    // Emission order: Kahn over the used op classes, smallest original position first.
    let mut key: BTreeMap<Id, usize> = BTreeMap::new();
    for &c in &used {
        if let Some(v) = by_class.get(&c) {
            key.insert(c, v[0].0);
        }
    }
    let mut users: BTreeMap<Id, Vec<Id>> = BTreeMap::new();
    let mut pending: BTreeMap<Id, usize> = BTreeMap::new();
    for &c in &used {
        let deps: BTreeSet<Id> = chosen(c).children().iter().map(|&k| eg.find(k)).collect();
        pending.insert(c, deps.len());
        for d in deps {
            users.entry(d).or_default().push(c);
        }
    }
    let mut heap: BinaryHeap<Reverse<(usize, Id)>> = BinaryHeap::new();
    for &c in &used {
        if matches!(chosen(c), Node::Arg(_)) {
            key.insert(c, 0);
        }
    }
    for (&c, &n) in &pending {
        if n == 0 {
            heap.push(Reverse((key.get(&c).copied().unwrap_or(0), c)));
        }
    }
    let mut order: Vec<Id> = Vec::new();
    while let Some(Reverse((kc, c))) = heap.pop() {
        order.push(c);
        for &u in users.get(&c).map(|v| v.as_slice()).unwrap_or(&[]) {
            let n = pending.get_mut(&u).expect("every used class has a count");
            *n -= 1;
            if *n == 0 {
                // A class without an original op goes right after its last operand.
                let ku = *key.entry(u).or_insert(kc);
                heap.push(Reverse((ku, u)));
            }
        }
    }

    // Locations: reused ops keep theirs; new ops fuse what they replace.
    let reused = |c: Id| -> Option<usize> {
        by_class
            .get(&c)?
            .iter()
            .find(|(_, n)| n == chosen(c))
            .map(|(i, _)| *i)
    };
    let absorbed_locs = |c: Id| -> Vec<Loc> {
        let mut out = Vec::new();
        let mut seen: BTreeSet<Id> = BTreeSet::new();
        let mut stack = vec![c];
        while let Some(k) = stack.pop() {
            if !seen.insert(k) || (k != c && used.contains(&k)) {
                continue;
            }
            if let Some(v) = by_class.get(&k) {
                for (i, n) in v {
                    out.push(loaded.originals[*i].loc.clone());
                    stack.extend(n.children().iter().rev().map(|&x| eg.find(x)));
                }
            }
        }
        out
    };

    let mut func = Func::new(original.name.clone(), &original.param_types());
    func.loc = original.loc.clone();
    let mut vals: BTreeMap<Id, Vec<Value>> = BTreeMap::new();
    let mut locs: BTreeMap<Id, Loc> = BTreeMap::new();
    let mut new_ops = 0u64;
    let mut kept: BTreeSet<usize> = BTreeSet::new();
    let mut replaced = Vec::new();
    let mut origins = Vec::new();
    // Inherited locations for classes without originals: the first user's (in reverse
    // emission order, users come after their operands).
    let mut inherit: BTreeMap<Id, Loc> = BTreeMap::new();
    for &c in order.iter().rev() {
        let loc = match (reused(c), by_class.contains_key(&c)) {
            (Some(i), _) => loaded.originals[i].loc.clone(),
            (None, true) => Loc::fuse(absorbed_locs(c)),
            (None, false) => inherit.get(&c).cloned().unwrap_or_default(),
        };
        for &k in chosen(c).children() {
            inherit.entry(eg.find(k)).or_insert_with(|| loc.clone());
        }
        locs.insert(c, loc);
    }
    for &c in &order {
        match chosen(c) {
            Node::Arg(i) => {
                vals.insert(c, vec![func.params[*i as usize]]);
            }
            Node::Result(i, [t]) => {
                let v = vals[&eg.find(*t)][*i as usize];
                vals.insert(c, vec![v]);
            }
            Node::Op(o) => {
                let args = o.children.iter().map(|&k| vals[&eg.find(k)][0]).collect();
                let op = func.append_op(
                    o.opcode,
                    args,
                    o.attrs.to_attrs(),
                    o.types.to_vec(),
                    locs[&c].clone(),
                );
                origins.push(Origin {
                    kept: reused(c),
                    class: by_class
                        .get(&c)
                        .map(|v| v.iter().map(|(i, _)| *i).collect())
                        .unwrap_or_default(),
                });
                match reused(c) {
                    Some(i) => {
                        kept.insert(i);
                    }
                    None => {
                        new_ops += 1;
                        if let Some(v) = by_class.get(&c) {
                            replaced.push((op, loaded.originals[v[0].0].id));
                        }
                    }
                }
                vals.insert(c, func.ops[op].results.clone());
            }
        }
    }
    func.rets = roots.iter().map(|r| vals[r][0]).collect();
    let removed_ops = (loaded.originals.len() - kept.len()) as u64;
    Extracted {
        changed: new_ops > 0 || removed_ops > 0,
        func,
        new_ops,
        removed_ops,
        replaced,
        cost,
        origins,
    }
}
