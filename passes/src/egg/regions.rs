//! Region-wise saturation: cut a function where no rule can look through, saturate each
//! distinct region once, and reuse the result for every region with the same structure
//! (the identical transformer blocks of a stack).
//!
//! ```text
//! Func ──segment──► regions (contiguous runs of ops, small live-in sets)
//!        │ region_func: ops renumbered by first use, live-ins as parameters,
//!        │              weights named by slot, locations as op-index placeholders
//!        ▼
//!   signature ──(first time)──► load, saturate, extract  ──► template
//!             ──(seen before)─► reuse the template
//!        ▼
//!   instantiate each region's template (its live-ins, its weights, its locations)
//!        ▼
//!   stitch: hash-cons, drop what nothing uses, order as the whole-function extraction
//! ```
//!
//! # Where a function may be cut
//!
//! Rules see their operands only through the operands' e-classes: a class's nodes of the
//! opcodes the rule [`inspects`](super::rules::Rule::inspects) (or that its pattern names
//! below its root), its type and its constant value. A value `v` computed before a cut
//! and read after it becomes a parameter of the later region, whose class holds only an
//! argument leaf. Cutting at `v` loses no match when `v`'s class in the whole-function
//! e-graph shows the rules nothing more than that leaf does:
//!
//! 1. `v`'s producer's opcode is no rule's root, inspected opcode or built opcode
//!    ([`Reach::touches`]): no rule fires on it, looks at it, or builds a copy of it, so
//!    the producer node is invisible to every rule and only ever leaves its class by a
//!    union that a rule rooted at one of `v`'s users makes.
//! 2. `v` does not depend on constants alone (`graph.constant` and ops of constants), so
//!    its class has no constant value for a guard to read.
//! 3. No user of `v` has an inspected opcode.
//!
//! Then, in the whole-function e-graph, `v`'s class never holds a node of an inspected
//! opcode and never a constant value, so every rule sees it as the leaf it is in the
//! later region. Nodes join `v`'s class only by unions a rule makes between its matched
//! class `X` and a class it returns. `X` is not `v`'s class (1), so the returned class
//! is: the rule returned an operand of `X` (an identity: `x * 1 -> x`, then `X` is a
//! direct user of `v`, not of an inspected opcode by (3)) or a class it found below an
//! inspected node (`q` of `quantize(dequantize(q))`, `x` of `transpose(transpose(x))`:
//! then the direct user of `v` on that chain has an inspected opcode, which (3) rules
//! out). So `X` is a direct user of `v` of no inspected opcode, and what `X`'s class
//! holds besides `X` was built by a rule on `X` after it found an inspected node in an
//! operand class, or merged in the same way; the first inspected node to reach `v`'s
//! class would have needed one there already. The assumption behind this, which every
//! rule of [`super::rules`] meets and [`super::rules::Rule::inspects`] states: a rule
//! adds nodes to its matched class only after finding an inspected node in an operand
//! class, and otherwise returns operand classes. Constant values: `X`'s class is
//! constant only when `v` is, which (2) rules out. Unions made by users in a later
//! region happen region-wise too, on the parameter's class. (This is a sketch for the
//! rule sets of this crate, not a proof for any rule set: the tests compare region-wise
//! and whole-function results, and `fuse-qdq{reuse=false}` is there to compare by hand.)
//!
//! Function parameters are leaves already and need only (3). Ops of weights and
//! constants only ([`static_ops`]: the weights, the constants, and the dequantized weights
//! an importer hoists to the top of a function) belong to no region and are never cut
//! at: each region that reads one gets its own copy of it and of what it is computed
//! from, so guards still see constant values and rules still see a weight's dequantize;
//! the stitch step merges the copies back into one op.
//!
//! A cut is placed before every op where every value crossing it qualifies; a function
//! with no such place is one region, optimized exactly as before.
//!
//! # Equal to the whole-function result
//!
//! Saturation is the same rule applications, region by region. Extraction differs in two
//! places, which the stitch step undoes: the whole-function e-graph hash-conses equal
//! terms of different regions (stitching hash-conses the output), and drops ops whose
//! users were rewritten away (stitching keeps only what the returns reach). The output is
//! then ordered by the same Kahn order on original positions the bridge uses. What can
//! still differ is the cost model's view of a live-in: the whole-function extraction
//! charges an operand's cost split among its users, so the cost of everything above a
//! cut leaks into choices below it; a region charges nothing for its parameters. Equal
//! costs within a region stay equal, so the extracted ops agree whenever that leaked
//! share does not break a tie. And locations differ where the whole-function e-graph
//! shares a term between regions (equal constants in every block): its extraction then
//! fuses the locations of all the regions' copies into each user, while region-wise
//! each new op names its own region's ops only. A weight's dequantize copied into two
//! regions of different structure may also come out rewritten in one and kept in the
//! other (the whole-function extraction picks one form for both). Tests compare both,
//! byte for byte with locations, on block stacks; the fuse-qdq snapshot cases are
//! single regions.
//!
//! # Determinism
//!
//! Regions, signatures (a `BTreeMap`), templates and stitching follow program order and
//! ordered maps only; each template is the bridge's deterministic extraction.
//!
//! # Signatures
//!
//! A region's signature is its region function without locations: parameter types, ops
//! (opcode, attributes, result types, operands by first-use number), and results.
//! Constants are ops of the region, so their values are part of it (rules read them);
//! weights are named by slot, so blocks that differ only in their weights share one.
//!
//! # Limits
//!
//! Every distinct region gets the whole [`Limits`] (iterations, nodes, time).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use cranelift_entity::{EntityRef, SecondaryMap};
use lowbit_dialects::ir::{Attr, Attrs, Func, Loc, TensorType, Value, ValueData, ValueDef};
use lowbit_dialects::{graph, Opcode};

use super::bridge::{self, Origin};
use super::lang::AttrKey;
use super::rules::Rule;
use super::{saturate_with, EggError, Limits, Optimized, Report, Stop};

/// What a rule set can fire on, look at and build, by opcode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reach {
    /// The opcodes rules are rooted at.
    pub roots: BTreeSet<Opcode>,
    /// The opcodes rules look for in their operands' classes.
    pub inspects: BTreeSet<Opcode>,
    /// The opcodes rules may add.
    pub builds: BTreeSet<Opcode>,
}

impl Reach {
    /// The reach of `rules`; `None` when a pattern does not parse (then nothing is cut).
    pub fn of(rules: &[Rule]) -> Option<Reach> {
        let mut r = Reach::default();
        for rule in rules {
            let (root, below) = rule.pattern_opcodes()?;
            r.roots.insert(root);
            r.inspects.extend(below);
            r.inspects.extend(rule.inspects.iter().copied());
            r.builds.extend(rule.builds.iter().copied());
        }
        Some(r)
    }

    /// Whether some rule fires on, looks at or builds `op`.
    pub fn touches(&self, op: Opcode) -> bool {
        self.roots.contains(&op) || self.inspects.contains(&op) || self.builds.contains(&op)
    }
}

/// How region-wise saturation went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionCount {
    /// Regions the function was cut into.
    pub regions: u64,
    /// Distinct regions saturated.
    pub saturated: u64,
    /// Regions that reused another region's result.
    pub reused: u64,
}

/// For each body position: whether the op computes from weights and constants only
/// (zero-operand ops, and pure ops of those: a dequantized weight). Such ops belong to no
/// region; every region that reads one gets a copy of it and what it is computed from.
pub fn static_ops(func: &Func) -> Vec<bool> {
    let mut stat: SecondaryMap<Value, bool> = SecondaryMap::new();
    let mut out = Vec::with_capacity(func.body.len());
    for &op in &func.body {
        let d = &func.ops[op];
        let s = d.args.is_empty() || (d.opcode.is_pure() && d.args.iter().all(|&a| stat[a]));
        for &r in &d.results {
            stat[r] = s;
        }
        out.push(s);
    }
    out
}

/// The regions of `func`: body positions of their ops (ops of weights and constants only
/// left out, see [`static_ops`]), each region a contiguous run in program order. See the
/// module docs for where cuts go.
pub fn segment(func: &Func, reach: &Reach) -> Vec<Vec<usize>> {
    let n = func.body.len();
    let statics = static_ops(func);
    let mut last_use: SecondaryMap<Value, Option<usize>> = SecondaryMap::new();
    let mut user_inspected: SecondaryMap<Value, bool> = SecondaryMap::new();
    let mut konst: SecondaryMap<Value, bool> = SecondaryMap::new();
    for (p, &op) in func.body.iter().enumerate() {
        let d = &func.ops[op];
        for &a in &d.args {
            last_use[a] = Some(p);
            if reach.inspects.contains(&d.opcode) {
                user_inspected[a] = true;
            }
        }
        // May the analysis know this value? (Constants, and anything of constants only.)
        let k = if d.args.is_empty() {
            d.opcode != Opcode::Graph(graph::Op::Weight)
        } else {
            d.args.iter().all(|&a| konst[a])
        };
        for &r in &d.results {
            konst[r] = k;
        }
    }
    // bad[p] > 0: a value that does not qualify crosses the place before op p.
    let mut bad = vec![0i64; n + 2];
    let mut mark = |from: usize, v: Value| {
        if let Some(u) = last_use[v] {
            if from <= u {
                bad[from] += 1;
                bad[u + 1] -= 1;
            }
        }
    };
    for &v in &func.params {
        if user_inspected[v] {
            mark(0, v);
        }
    }
    for (p, &op) in func.body.iter().enumerate() {
        let d = &func.ops[op];
        if statics[p] {
            continue;
        }
        for &r in &d.results {
            if reach.touches(d.opcode) || konst[r] || user_inspected[r] {
                mark(p + 1, r);
            }
        }
    }
    let mut regions: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut crossing = 0i64;
    for p in 0..n {
        crossing += bad[p];
        if crossing == 0 && !cur.is_empty() {
            regions.push(std::mem::take(&mut cur));
        }
        if !statics[p] {
            cur.push(p);
        }
    }
    if !cur.is_empty() {
        regions.push(cur);
    }
    regions
}

/// Prefix of the placeholder location of a region function's op.
const PLACEHOLDER: &str = "\u{0}region-op-";

/// A region as a function of its own.
struct RegionFunc {
    /// Live-ins as parameters (in first-use order), the region's ops and the zero-operand
    /// ops they read (copied), weights named by slot, locations as placeholders.
    func: Func,
    /// The body position, in the original function, of each op of `func.body`.
    positions: Vec<usize>,
    /// The original values `func.params` stand for.
    live_in: Vec<Value>,
    /// The original values `func.rets` stand for.
    live_out: Vec<Value>,
}

/// Where `func`'s ops are, and which values leave their region.
struct Layout {
    /// Body position of each op.
    pos_of: SecondaryMap<lowbit_dialects::ir::Op, usize>,
    /// Values read outside the region that defines them, or returned.
    outside: SecondaryMap<Value, bool>,
    /// [`static_ops`].
    statics: Vec<bool>,
}

impl Layout {
    fn new(func: &Func, region_of: &[usize]) -> Layout {
        let mut pos_of = SecondaryMap::new();
        for (p, &op) in func.body.iter().enumerate() {
            pos_of[op] = p;
        }
        let mut outside: SecondaryMap<Value, bool> = SecondaryMap::new();
        for (p, &op) in func.body.iter().enumerate() {
            for &a in &func.ops[op].args {
                if let ValueDef::Result(o, _) = func.values[a].def {
                    if region_of[pos_of[o]] != region_of[p] {
                        outside[a] = true;
                    }
                }
            }
        }
        for &v in &func.rets {
            outside[v] = true;
        }
        Layout {
            pos_of,
            outside,
            statics: static_ops(func),
        }
    }
}

fn region_func(func: &Func, ops: &[usize], layout: &Layout) -> RegionFunc {
    let mut f = Func::new(func.name.clone(), &[]);
    // Original value -> region value (a map, not a `SecondaryMap`: regions are small and
    // the function is not).
    let mut map: BTreeMap<Value, Value> = BTreeMap::new();
    let mut positions = Vec::new();
    let mut live_in = Vec::new();
    let mut weights = 0usize;
    let pos_of = &layout.pos_of;
    let copy = |f: &mut Func,
                positions: &mut Vec<usize>,
                map: &mut BTreeMap<Value, Value>,
                p: usize,
                args: Vec<Value>,
                attrs: Attrs| {
        let d = &func.ops[func.body[p]];
        let loc = Loc::name(format!("{PLACEHOLDER}{}", positions.len()));
        let types = d.results.iter().map(|&v| func.ty(v).clone()).collect();
        let op = f.append_op(d.opcode, args, attrs, types, loc);
        positions.push(p);
        for (&o, &l) in d.results.iter().zip(&f.ops[op].results) {
            map.insert(o, l);
        }
    };
    // Copies a static op and what it reads, depth first (operands before users).
    fn copy_static(
        func: &Func,
        o: lowbit_dialects::ir::Op,
        map: &BTreeMap<Value, Value>,
        todo: &mut Vec<lowbit_dialects::ir::Op>,
    ) {
        if todo.contains(&o) || func.ops[o].results.iter().all(|r| map.contains_key(r)) {
            return;
        }
        for &a in &func.ops[o].args {
            if let ValueDef::Result(x, _) = func.values[a].def {
                copy_static(func, x, map, todo);
            }
        }
        todo.push(o);
    }
    for &p in ops {
        let d = &func.ops[func.body[p]];
        let mut args = Vec::with_capacity(d.args.len());
        for &a in &d.args {
            if let Some(&v) = map.get(&a) {
                args.push(v);
                continue;
            }
            match func.values[a].def {
                ValueDef::Result(o, _) if layout.statics[pos_of[o]] => {
                    let mut todo = Vec::new();
                    copy_static(func, o, &map, &mut todo);
                    for o in todo {
                        let od = &func.ops[o];
                        let mut attrs = od.attrs.clone();
                        if od.opcode == Opcode::Graph(graph::Op::Weight) {
                            attrs.set("name", Attr::Str(format!("w{weights}")));
                            weights += 1;
                        }
                        let oargs = od.args.iter().map(|x| map[x]).collect();
                        copy(&mut f, &mut positions, &mut map, pos_of[o], oargs, attrs);
                    }
                }
                _ => {
                    let i = f.params.len() as u32;
                    let v = f.values.push(ValueData {
                        ty: func.ty(a).clone(),
                        def: ValueDef::Param(i),
                    });
                    f.params.push(v);
                    map.insert(a, v);
                    live_in.push(a);
                }
            }
            args.push(map[&a]);
        }
        copy(&mut f, &mut positions, &mut map, p, args, d.attrs.clone());
    }
    // Results read outside the region, or returned.
    let outside = &layout.outside;
    let mut live_out = Vec::new();
    for &p in ops {
        for &v in &func.ops[func.body[p]].results {
            if outside[v] {
                live_out.push(v);
                f.rets.push(map[&v]);
            }
        }
    }
    RegionFunc {
        func: f,
        positions,
        live_in,
        live_out,
    }
}

/// A region's structure: its function without locations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Signature {
    params: Vec<TensorType>,
    ops: Vec<(Opcode, AttrKey, Vec<TensorType>, Vec<usize>)>,
    rets: Vec<usize>,
}

fn signature(f: &Func) -> Signature {
    Signature {
        params: f.param_types(),
        ops: f
            .body
            .iter()
            .map(|&op| {
                let d = &f.ops[op];
                (
                    d.opcode,
                    AttrKey::from_attrs(&d.attrs),
                    d.results.iter().map(|&v| f.ty(v).clone()).collect(),
                    d.args.iter().map(|a| a.index()).collect(),
                )
            })
            .collect(),
        rets: f.rets.iter().map(|v| v.index()).collect(),
    }
}

/// A saturated, extracted region.
struct Template {
    func: Func,
    origins: Vec<Origin>,
    report: Report,
    uses: u64,
}

/// A value of the stitched function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum GVal {
    Param(usize),
    Node(usize, usize),
}

/// An op of the stitched function.
struct GNode {
    opcode: Opcode,
    attrs: Attrs,
    types: Vec<TensorType>,
    args: Vec<GVal>,
    loc: Loc,
    /// Body position of the first original op of its class (orders the output).
    first: Option<usize>,
    /// Body position of the original op it is.
    kept: Option<usize>,
}

/// Replaces placeholder locations by the region's own.
fn map_loc(loc: &Loc, real: &[Loc]) -> Loc {
    match loc {
        Loc::Name { name, child: None } => match name.strip_prefix(PLACEHOLDER) {
            Some(k) => k
                .parse::<usize>()
                .ok()
                .and_then(|k| real.get(k).cloned())
                .unwrap_or_default(),
            None => loc.clone(),
        },
        Loc::Fused(v) => Loc::fuse(v.iter().map(|l| map_loc(l, real))),
        other => other.clone(),
    }
}

/// [`super::optimize`] region by region: saturates each distinct region once and reuses
/// the result for the regions with its signature. A function that does not cut (one
/// region), or a rule set whose reach is unknown, is optimized whole.
pub fn optimize_regions(
    func: &Func,
    rules: &[Rule],
    limits: &Limits,
) -> Result<(Optimized, RegionCount), EggError> {
    let whole = |func: &Func| -> Result<(Optimized, RegionCount), EggError> {
        let out = super::optimize(func, rules, limits, false)?;
        let count = RegionCount {
            regions: 1,
            saturated: 1,
            reused: 0,
        };
        Ok((out, count))
    };
    let Some(reach) = Reach::of(rules) else {
        return whole(func);
    };
    let regions = segment(func, &reach);
    if regions.len() <= 1 {
        return whole(func);
    }
    let mut region_of = vec![usize::MAX; func.body.len()];
    for (r, ops) in regions.iter().enumerate() {
        for &p in ops {
            region_of[p] = r;
        }
    }

    // Saturate each distinct region once (refusing approximate rules first, as
    // `saturate` does; the rewrites are built once for all regions).
    let rewrites = super::exact_rewrites(rules)?;
    let mut templates: Vec<Template> = Vec::new();
    let mut by_sig: BTreeMap<Signature, usize> = BTreeMap::new();
    let mut parts: Vec<(RegionFunc, usize)> = Vec::new();
    let layout = Layout::new(func, &region_of);
    for ops in &regions {
        let rf = region_func(func, ops, &layout);
        let sig = signature(&rf.func);
        let t = match by_sig.get(&sig) {
            Some(&t) => t,
            None => {
                let loaded = bridge::load(&rf.func, false);
                let (loaded, report) = saturate_with(loaded, rules, &rewrites, limits)?;
                let ex = bridge::extract(&loaded, &rf.func);
                templates.push(Template {
                    func: ex.func,
                    origins: ex.origins,
                    report,
                    uses: 0,
                });
                by_sig.insert(sig, templates.len() - 1);
                templates.len() - 1
            }
        };
        templates[t].uses += 1;
        parts.push((rf, t));
    }

    // Instantiate.
    let mut nodes: Vec<GNode> = Vec::new();
    let mut gval: SecondaryMap<Value, Option<GVal>> = SecondaryMap::new();
    for (i, &p) in func.params.iter().enumerate() {
        gval[p] = Some(GVal::Param(i));
    }
    // Static ops kept as they are: one op for all the regions that copied them.
    let mut shared: BTreeMap<usize, usize> = BTreeMap::new();
    for (rf, t) in &parts {
        let tpl = &templates[*t];
        let real: Vec<Loc> = rf
            .positions
            .iter()
            .map(|&p| func.ops[func.body[p]].loc.clone())
            .collect();
        let mut local: SecondaryMap<Value, Option<GVal>> = SecondaryMap::new();
        for (i, &v) in tpl.func.params.iter().enumerate() {
            local[v] = gval[rf.live_in[i]];
        }
        for (&op, origin) in tpl.func.body.iter().zip(&tpl.origins) {
            let d = &tpl.func.ops[op];
            let kept = origin.kept.map(|k| rf.positions[k]);
            let idx = match kept {
                Some(p) if layout.statics[p] && shared.contains_key(&p) => shared[&p],
                _ => {
                    let args = d
                        .args
                        .iter()
                        .map(|&a| local[a].expect("operands come first"))
                        .collect();
                    let (attrs, loc) = match kept {
                        Some(p) => {
                            let o = &func.ops[func.body[p]];
                            (o.attrs.clone(), o.loc.clone())
                        }
                        None => (d.attrs.clone(), map_loc(&d.loc, &real)),
                    };
                    nodes.push(GNode {
                        opcode: d.opcode,
                        attrs,
                        types: d.results.iter().map(|&v| tpl.func.ty(v).clone()).collect(),
                        args,
                        loc,
                        // Region functions place a weight or constant at its first
                        // use: the class's first original is the smallest position.
                        first: origin.class.iter().map(|&k| rf.positions[k]).min(),
                        kept,
                    });
                    if let Some(p) = kept.filter(|&p| layout.statics[p]) {
                        shared.insert(p, nodes.len() - 1);
                    }
                    nodes.len() - 1
                }
            };
            for (i, &v) in d.results.iter().enumerate() {
                local[v] = Some(GVal::Node(idx, i));
            }
        }
        for (&o, &l) in rf.live_out.iter().zip(&tpl.func.rets) {
            gval[o] = local[l];
        }
    }
    let mut rets = Vec::with_capacity(func.rets.len());
    for &v in &func.rets {
        match (gval[v], func.values[v].def) {
            (Some(g), _) => rets.push(g),
            (None, ValueDef::Param(i)) => rets.push(GVal::Param(i as usize)),
            // A returned weight or constant: rare enough to optimize whole.
            (None, ValueDef::Result(..)) => return whole(func),
        }
    }

    let (out, new_ops, kept) = stitch(func, nodes, &rets);
    let removed_ops = (func.body.len() - kept) as u64;
    let changed = new_ops > 0 || removed_ops > 0;

    let mut report = Report {
        stop: Stop::Saturated,
        iterations: 0,
        nodes: 0,
        classes: 0,
        applied: rules.iter().map(|r| (r.name, 0)).collect(),
        explanations: Vec::new(),
    };
    for t in &templates {
        if report.stop == Stop::Saturated {
            report.stop = t.report.stop.clone();
        }
        report.iterations += t.report.iterations;
        report.nodes += t.report.nodes;
        report.classes += t.report.classes;
        for (a, b) in report.applied.iter_mut().zip(&t.report.applied) {
            a.1 += b.1 * t.uses;
        }
    }
    let count = RegionCount {
        regions: regions.len() as u64,
        saturated: templates.len() as u64,
        reused: (regions.len() - templates.len()) as u64,
    };
    let opt = Optimized {
        func: if changed { out } else { func.clone() },
        changed,
        new_ops: if changed { new_ops } else { 0 },
        removed_ops: if changed { removed_ops } else { 0 },
        report,
    };
    Ok((opt, count))
}

/// Hash-conses `nodes` (in creation order, which is topological), keeps what `rets`
/// reach, and emits it in the bridge's order: Kahn over original positions, an op without
/// an original right after the last of its operands. Returns the function, the count of
/// new ops and the count of original ops kept.
fn stitch(func: &Func, mut nodes: Vec<GNode>, rets: &[GVal]) -> (Func, u64, usize) {
    // Hash-cons.
    let mut canon: Vec<usize> = (0..nodes.len()).collect();
    let mut seen: BTreeMap<(Opcode, AttrKey, Vec<TensorType>, Vec<GVal>), usize> = BTreeMap::new();
    let fix = |canon: &[usize], g: GVal| match g {
        GVal::Node(n, i) => GVal::Node(canon[n], i),
        p => p,
    };
    for i in 0..nodes.len() {
        let args: Vec<GVal> = nodes[i].args.iter().map(|&g| fix(&canon, g)).collect();
        nodes[i].args = args.clone();
        let key = (
            nodes[i].opcode,
            AttrKey::from_attrs(&nodes[i].attrs),
            nodes[i].types.clone(),
            args,
        );
        match seen.get(&key) {
            Some(&c) => {
                canon[i] = c;
                let (first, kept) = (nodes[i].first, nodes[i].kept);
                let loc = nodes[i].loc.clone();
                let cn = &mut nodes[c];
                cn.first = match (cn.first, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if kept.is_some() && (cn.kept.is_none() || kept < cn.kept) {
                    cn.kept = kept;
                    cn.loc = loc;
                }
            }
            None => {
                seen.insert(key, i);
            }
        }
    }
    let rets: Vec<GVal> = rets.iter().map(|&g| fix(&canon, g)).collect();

    // What the returns reach.
    let mut used = vec![false; nodes.len()];
    let mut stack: Vec<usize> = rets
        .iter()
        .filter_map(|g| match g {
            GVal::Node(n, _) => Some(*n),
            GVal::Param(_) => None,
        })
        .collect();
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut used[n], true) {
            continue;
        }
        for a in &nodes[n].args {
            if let GVal::Node(m, _) = a {
                stack.push(*m);
            }
        }
    }

    // Kahn, smallest original position first.
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut pending = vec![0usize; nodes.len()];
    for n in (0..nodes.len()).filter(|&n| used[n]) {
        let deps: BTreeSet<usize> = nodes[n]
            .args
            .iter()
            .filter_map(|g| match g {
                GVal::Node(m, _) => Some(*m),
                GVal::Param(_) => None,
            })
            .collect();
        pending[n] = deps.len();
        for d in deps {
            users[d].push(n);
        }
    }
    let mut key: Vec<usize> = nodes.iter().map(|n| n.first.unwrap_or(0)).collect();
    let tie = |n: usize, nodes: &[GNode]| usize::from(nodes[n].first.is_none());
    let mut heap: BinaryHeap<Reverse<(usize, usize, usize)>> = BinaryHeap::new();
    for n in (0..nodes.len()).filter(|&n| used[n] && pending[n] == 0) {
        heap.push(Reverse((key[n], tie(n, &nodes), n)));
    }
    let mut order = Vec::new();
    while let Some(Reverse((kc, _, n))) = heap.pop() {
        order.push(n);
        for &u in &users[n] {
            pending[u] -= 1;
            if pending[u] == 0 {
                if nodes[u].first.is_none() {
                    key[u] = kc;
                }
                heap.push(Reverse((key[u], tie(u, &nodes), u)));
            }
        }
    }

    let mut f = Func::new(func.name.clone(), &func.param_types());
    f.loc = func.loc.clone();
    let mut vals: Vec<Vec<Value>> = vec![Vec::new(); nodes.len()];
    let val = |vals: &[Vec<Value>], f: &Func, g: GVal| match g {
        GVal::Param(i) => f.params[i],
        GVal::Node(n, i) => vals[n][i],
    };
    let (mut new_ops, mut kept) = (0u64, 0usize);
    for n in order {
        let d = &nodes[n];
        let args = d.args.iter().map(|&g| val(&vals, &f, g)).collect();
        let op = f.append_op(
            d.opcode,
            args,
            d.attrs.clone(),
            d.types.clone(),
            d.loc.clone(),
        );
        vals[n] = f.ops[op].results.clone();
        match d.kept {
            Some(_) => kept += 1,
            None => new_ops += 1,
        }
    }
    f.rets = rets.iter().map(|&g| val(&vals, &f, g)).collect();
    (f, new_ops, kept)
}
