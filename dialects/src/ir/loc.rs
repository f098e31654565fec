//! Source locations, MLIR style.
//!
//! Text gives `file:line:col`; importers give the ONNX node or safetensors key an op came
//! from (a name location, optionally wrapping the file); passes that fuse ops give the fused
//! op a `fused[...]` location listing what it replaced. All print as MLIR location syntax.

use std::fmt;

/// Where an op came from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Loc {
    /// No location (`loc(unknown)`).
    #[default]
    Unknown,
    /// A position in a text file (`loc("a.mlir":3:7)`), 1-based.
    File {
        /// The file name.
        file: String,
        /// Line, from 1.
        line: u32,
        /// Column, from 1.
        col: u32,
    },
    /// A named entity (`loc("layers.0.q_proj")`, or `loc("node"("model.onnx":0:0))`).
    Name {
        /// The node or tensor name.
        name: String,
        /// Where the name lives, if known.
        child: Option<Box<Loc>>,
    },
    /// The ops a rewrite replaced (`loc(fused["a", "b"])`).
    Fused(Vec<Loc>),
}

impl Loc {
    /// A name location without a child.
    pub fn name(name: impl Into<String>) -> Loc {
        Loc::Name {
            name: name.into(),
            child: None,
        }
    }

    /// Fuses locations: nested fused lists are flattened, unknowns and duplicates dropped;
    /// a single survivor is returned as itself.
    pub fn fuse(locs: impl IntoIterator<Item = Loc>) -> Loc {
        let mut out: Vec<Loc> = Vec::new();
        for l in locs {
            let items = match l {
                Loc::Fused(v) => v,
                Loc::Unknown => continue,
                other => vec![other],
            };
            for l in items {
                if !out.contains(&l) {
                    out.push(l);
                }
            }
        }
        match out.len() {
            0 => Loc::Unknown,
            1 => out.pop().expect("one element"),
            _ => Loc::Fused(out),
        }
    }

    /// The location as it appears inside `loc(...)`.
    fn write_inner(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Unknown => f.write_str("unknown"),
            Loc::File { file, line, col } => {
                let mut s = String::new();
                super::attrs::write_string(&mut s, file)?;
                write!(f, "{s}:{line}:{col}")
            }
            Loc::Name { name, child } => {
                let mut s = String::new();
                super::attrs::write_string(&mut s, name)?;
                f.write_str(&s)?;
                if let Some(c) = child {
                    f.write_str("(")?;
                    c.write_inner(f)?;
                    f.write_str(")")?;
                }
                Ok(())
            }
            Loc::Fused(v) => {
                f.write_str("fused[")?;
                for (i, l) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    l.write_inner(f)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Loc {
    /// Prints `loc(...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loc(")?;
        self.write_inner(f)?;
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_mlir_syntax() {
        let file = Loc::File {
            file: "a.mlir".into(),
            line: 3,
            col: 7,
        };
        assert_eq!(file.to_string(), "loc(\"a.mlir\":3:7)");
        let fused = Loc::fuse([
            Loc::name("q"),
            Loc::Unknown,
            Loc::fuse([Loc::name("k"), file]),
        ]);
        assert_eq!(
            fused.to_string(),
            "loc(fused[\"q\", \"k\", \"a.mlir\":3:7])"
        );
        assert_eq!(Loc::fuse([Loc::name("q"), Loc::name("q")]), Loc::name("q"));
    }
}
