//! Checks the reference interpreter against test vectors computed independently (numpy).
//!
//! Every `tests/data/interp/*.json` file is a list of cases:
//!
//! ```json
//! [{"name": "softmax_axis1",
//!   "mlir": "func @f(%arg0: tensor<2x3xf32>) -> tensor<2x3xf32> { ... }",
//!   "inputs": [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]],
//!   "weights": {"w": {"data": [1.0, 2.0]}},
//!   "outputs": [[...]], "atol": 1e-6, "rtol": 1e-6}]
//! ```
//!
//! Shapes and element types come from the function's signature; a weight takes the type of
//! the `graph.weight` op naming it, unless its entry overrides `"shape"` or `"elem"`. Values
//! are flat and row-major; the non-finite ones are the strings `"nan"`, `"inf"`, `"-inf"`.
//! A case expecting failure has `"error"`: a string or a list of strings that must all
//! occur in the interpreter's message, instead of `"outputs"`.
//!
//! An element passes when `|got - want| <= atol + rtol * |want|`; NaN matches NaN and
//! infinities must match exactly. `LOWBIT_INTERP_CASE=substr` runs only matching cases.
//! The generators (`tests/data/gen_*_vectors.py`) are the source of truth for the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lowbit_dialects::interp::{run_func, Tensor, Weights};
use lowbit_dialects::ir::parse::parse_module;
use lowbit_dialects::ir::verify::verify_module;
use lowbit_dialects::ir::{Attr, Elem, Func, TensorType};
use lowbit_dialects::Opcode;
use serde::Deserialize;

/// A number, or a string spelling a non-finite one.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
enum Num {
    Num(f64),
    Str(String),
}

impl Num {
    fn value(&self) -> Result<f64, String> {
        match self {
            Num::Num(v) => Ok(*v),
            Num::Str(s) => match s.as_str() {
                "nan" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(format!(
                    "'{other}' is not a number (use \"nan\", \"inf\" or \"-inf\")"
                )),
            },
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct WeightSpec {
    data: Vec<Num>,
    #[serde(default)]
    shape: Option<Vec<i64>>,
    #[serde(default)]
    elem: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    mlir: String,
    #[serde(default)]
    inputs: Vec<Vec<Num>>,
    #[serde(default)]
    weights: BTreeMap<String, WeightSpec>,
    #[serde(default)]
    outputs: Option<Vec<Vec<Num>>>,
    #[serde(default)]
    atol: f64,
    #[serde(default)]
    rtol: f64,
    #[serde(default)]
    error: Option<OneOrMany>,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/interp")
}

/// The vector files, sorted, split into `graph_*` and the rest.
fn files() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut all: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("tests/data/interp exists")
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    all.sort();
    all.into_iter()
        .partition(|p| file_name(p).starts_with("graph_"))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn load(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file_name(path)))
}

fn values(v: &[Num]) -> Result<Vec<f64>, String> {
    v.iter().map(Num::value).collect()
}

fn tensor(ty: &TensorType, data: &[Num], what: &str) -> Result<Tensor, String> {
    let data = values(data)?;
    if data.len() != ty.num_elements() {
        return Err(format!(
            "{what} has {} values but {ty} has {}",
            data.len(),
            ty.num_elements()
        ));
    }
    Ok(Tensor::new(ty.clone(), data))
}

/// The declared type of the `graph.weight` op named `name` in `f`.
fn weight_type(f: &Func, name: &str) -> Option<TensorType> {
    f.body.iter().find_map(|&op| {
        let d = &f.ops[op];
        let is_weight = d.opcode == Opcode::Graph(lowbit_dialects::graph::Op::Weight);
        let named = matches!(d.attrs.get("name"), Some(Attr::Str(n)) if n == name);
        (is_weight && named).then(|| f.ty(d.results[0]).clone())
    })
}

fn weights(f: &Func, specs: &BTreeMap<String, WeightSpec>) -> Result<Weights, String> {
    let mut out = Weights::new();
    for (name, spec) in specs {
        let declared = weight_type(f, name);
        let shape = spec
            .shape
            .clone()
            .or_else(|| declared.as_ref().map(|t| t.shape.clone()));
        let elem = match &spec.elem {
            Some(e) => Some(
                Elem::from_name(e)
                    .ok_or_else(|| format!("weight '{name}': unknown element type '{e}'"))?,
            ),
            None => declared.as_ref().map(|t| t.elem),
        };
        let (Some(shape), Some(elem)) = (shape, elem) else {
            return Err(format!(
                "weight '{name}' is used by no graph.weight op and gives no shape and elem"
            ));
        };
        let ty = TensorType::new(shape, elem);
        out.insert(
            name.clone(),
            tensor(&ty, &spec.data, &format!("weight '{name}'"))?,
        );
    }
    Ok(out)
}

fn close(got: f64, want: f64, atol: f64, rtol: f64) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= atol + rtol * want.abs()
}

/// Runs one case; `Err` lists what went wrong.
fn run_case(c: &Case) -> Result<(), Vec<String>> {
    let one = |m: String| vec![m];
    let module = parse_module(&c.mlir, &c.name, 0)
        .map_err(|e| one(format!("parse: {}", e.render(&c.mlir, &c.name, 0))))?;
    verify_module(&module).map_err(|errs| {
        errs.iter()
            .map(|e| format!("verify: {e}"))
            .collect::<Vec<_>>()
    })?;
    let f = module
        .funcs
        .first()
        .ok_or_else(|| one("the module has no function".into()))?;
    let params = f.param_types();
    if params.len() != c.inputs.len() {
        return Err(one(format!(
            "{} inputs for {} parameters",
            c.inputs.len(),
            params.len()
        )));
    }
    let inputs = params
        .iter()
        .zip(&c.inputs)
        .enumerate()
        .map(|(i, (ty, d))| tensor(ty, d, &format!("input #{i}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(one)?;
    let weights = weights(f, &c.weights).map_err(one)?;
    let result = run_func(f, &inputs, &weights);
    match (&c.error, &c.outputs) {
        (Some(expected), None) => {
            let subs = match expected {
                OneOrMany::One(s) => std::slice::from_ref(s),
                OneOrMany::Many(v) => v.as_slice(),
            };
            match result {
                Ok(_) => Err(one(format!(
                    "expected an error containing {subs:?}, but evaluation succeeded"
                ))),
                Err(e) => {
                    let msg = e.to_string();
                    let missing: Vec<_> =
                        subs.iter().filter(|s| !msg.contains(s.as_str())).collect();
                    if missing.is_empty() {
                        Ok(())
                    } else {
                        Err(one(format!("error '{msg}' does not contain {missing:?}")))
                    }
                }
            }
        }
        (None, Some(outputs)) => {
            let got = result.map_err(|e| one(format!("evaluation failed: {e}")))?;
            compare(c, &got, outputs)
        }
        _ => Err(one(
            "a case needs exactly one of \"outputs\" and \"error\"".into()
        )),
    }
}

fn compare(c: &Case, got: &[Tensor], outputs: &[Vec<Num>]) -> Result<(), Vec<String>> {
    if got.len() != outputs.len() {
        return Err(vec![format!(
            "{} outputs, expected {}",
            got.len(),
            outputs.len()
        )]);
    }
    let mut errs = Vec::new();
    for (o, (t, want)) in got.iter().zip(outputs).enumerate() {
        let want = values(want).map_err(|e| vec![e])?;
        if t.data.len() != want.len() {
            errs.push(format!(
                "output #{o}: {} elements ({}), expected {}",
                t.data.len(),
                t.ty,
                want.len()
            ));
            continue;
        }
        let bad: Vec<_> = (0..want.len())
            .filter(|&i| !close(t.data[i], want[i], c.atol, c.rtol))
            .collect();
        for &i in bad.iter().take(8) {
            errs.push(format!(
                "output #{o} element {i}: got {:e}, want {:e} ({})",
                t.data[i], want[i], t.ty
            ));
        }
        if bad.len() > 8 {
            errs.push(format!("output #{o}: {} more mismatches", bad.len() - 8));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Runs every case of `paths`, panicking with all failures listed.
fn run_files(paths: &[PathBuf]) {
    let filter = std::env::var("LOWBIT_INTERP_CASE").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in paths {
        let cases = match load(path) {
            Ok(c) => c,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        for c in cases
            .iter()
            .filter(|c| filter.as_ref().is_none_or(|f| c.name.contains(f.as_str())))
        {
            ran += 1;
            if let Err(errs) = run_case(c) {
                for e in errs {
                    failures.push(format!("{} / {}: {e}", file_name(path), c.name));
                }
            }
        }
    }
    eprintln!("ran {ran} case(s) from {} file(s)", paths.len());
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every opcode some case's function uses, over `paths`.
fn used_opcodes(paths: &[PathBuf]) -> BTreeSet<Opcode> {
    let mut used = BTreeSet::new();
    for path in paths {
        let Ok(cases) = load(path) else { continue };
        for c in cases {
            let Ok(m) = parse_module(&c.mlir, &c.name, 0) else {
                continue;
            };
            for f in &m.funcs {
                used.extend(f.body.iter().map(|&op| f.ops[op].opcode));
            }
        }
    }
    used
}

fn missing(all: impl Iterator<Item = Opcode>, used: &BTreeSet<Opcode>) -> Vec<&'static str> {
    all.filter(|o| !used.contains(o))
        .map(|o| o.name())
        .collect()
}

#[test]
fn graph_vectors() {
    let (graph, _) = files();
    assert!(
        !graph.is_empty(),
        "no graph_*.json vector files in {}",
        data_dir().display()
    );
    run_files(&graph);
}

#[test]
fn other_dialect_vectors() {
    let (_, other) = files();
    run_files(&other);
}

#[test]
fn every_graph_op_has_vectors() {
    let (graph, _) = files();
    let used = used_opcodes(&graph);
    let all = lowbit_dialects::graph::Op::ALL
        .iter()
        .map(|&o| Opcode::Graph(o));
    let missing = missing(all, &used);
    assert!(
        missing.is_empty(),
        "graph ops without interpreter vectors in graph_*.json: {missing:?}"
    );
}

#[test]
fn every_other_dialect_op_has_vectors() {
    let (graph, other) = files();
    let used = used_opcodes(&[graph, other].concat());
    let all = Opcode::all().filter(|o| !matches!(o, Opcode::Graph(_)));
    let missing = missing(all, &used);
    assert!(
        missing.is_empty(),
        "ops without interpreter vectors: {missing:?}"
    );
}
