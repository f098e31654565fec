//! The `dialect!` table macro and the [`Opcode`] enum that joins all dialects.
//!
//! Each dialect declares its ops once, in a table (`graph/ops.rs`, `lowbit/ops.rs`, ...):
//! mnemonic, operands (required, `opt(name)` optional, `var(name)` variadic), results,
//! traits and the attribute schema. From the table the macro generates the op enum, the
//! name lookups and a static [`OpInfo`] per op, which the parser, printer and verifier read.
//! Behaviour (type inference, interpretation, lowering) is written by hand as exhaustive
//! matches over the generated enums, so a new op does not compile until it is handled.
//!
//! Operand rules: optional operands follow the required ones and are filled in order;
//! a variadic operand list is the op's only non-required operand group.

use std::fmt;

use crate::ir::attrs::AttrKind;

/// How many values an operand or result slot takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly one.
    One,
    /// Zero or one.
    Optional,
    /// Any number (at least one for results).
    Variadic,
}

/// One operand or result slot of an op.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// Its name in docs and messages.
    pub name: &'static str,
    /// How many values it takes.
    pub arity: Arity,
}

/// One attribute in an op's schema.
#[derive(Clone, Copy, Debug)]
pub struct AttrSpec {
    /// The attribute name.
    pub name: &'static str,
    /// Its kind.
    pub kind: AttrKind,
    /// Whether the op needs it.
    pub required: bool,
}

/// Op traits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trait {
    /// No side effects: removable when unused, mergeable by CSE.
    Pure,
    /// Applies independently per element, with numpy broadcasting between operands.
    Elementwise,
    /// Operands may be swapped.
    Commutative,
}

/// The static description of an op, generated from its dialect table.
#[derive(Debug)]
pub struct OpInfo {
    /// Full name, `dialect.mnemonic`.
    pub name: &'static str,
    /// The doc comment from the table.
    pub doc: &'static str,
    /// Operand slots.
    pub operands: &'static [Slot],
    /// Result slots.
    pub results: &'static [Slot],
    /// Attribute schema.
    pub attrs: &'static [AttrSpec],
    /// Traits.
    pub traits: &'static [Trait],
}

impl OpInfo {
    /// Whether the op has `t`.
    pub fn has(&self, t: Trait) -> bool {
        self.traits.contains(&t)
    }

    /// The smallest and largest operand counts (`usize::MAX` when variadic).
    pub fn operand_range(&self) -> (usize, usize) {
        slot_range(self.operands)
    }

    /// The smallest and largest result counts.
    pub fn result_range(&self) -> (usize, usize) {
        let (lo, hi) = slot_range(self.results);
        (lo.max(1), hi)
    }

    /// The attribute spec named `name`.
    pub fn attr(&self, name: &str) -> Option<&AttrSpec> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// The index of the operand slot named `name`, when it is present among `n` operands.
    /// Optional operands are filled in order after the required ones.
    pub fn operand_index(&self, name: &str, n: usize) -> Option<usize> {
        let i = self.operands.iter().position(|s| s.name == name)?;
        (i < n).then_some(i)
    }
}

fn slot_range(slots: &[Slot]) -> (usize, usize) {
    let mut lo = 0usize;
    let mut hi = 0usize;
    for s in slots {
        match s.arity {
            Arity::One => {
                lo += 1;
                hi = hi.saturating_add(1);
            }
            Arity::Optional => hi = hi.saturating_add(1),
            Arity::Variadic => hi = usize::MAX,
        }
    }
    (lo, hi)
}

#[doc(hidden)]
#[macro_export]
macro_rules! __slot {
    ($n:ident) => {
        $crate::dialect::Slot {
            name: stringify!($n),
            arity: $crate::dialect::Arity::One,
        }
    };
    (opt $n:ident) => {
        $crate::dialect::Slot {
            name: stringify!($n),
            arity: $crate::dialect::Arity::Optional,
        }
    };
    (var $n:ident) => {
        $crate::dialect::Slot {
            name: stringify!($n),
            arity: $crate::dialect::Arity::Variadic,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __attr_spec {
    (req $n:ident $k:ident) => {
        $crate::dialect::AttrSpec {
            name: stringify!($n),
            kind: $crate::ir::attrs::AttrKind::$k,
            required: true,
        }
    };
    (opt $n:ident $k:ident) => {
        $crate::dialect::AttrSpec {
            name: stringify!($n),
            kind: $crate::ir::attrs::AttrKind::$k,
            required: false,
        }
    };
}

/// Declares a dialect's op table. See the module docs and `graph/ops.rs`.
#[macro_export]
macro_rules! dialect {
    (
        $(#[doc = $ddoc:expr])*
        name = $dname:literal;
        $(
            $(#[doc = $doc:expr])*
            $variant:ident $mn:literal
            ( $($oa:ident $(($ob:ident))?),* ) -> ( $($ra:ident $(($rb:ident))?),* )
            [ $($tr:ident),* ]
            { $($aq:ident $an:ident : $ak:ident),* } ;
        )*
    ) => {
        $(#[doc = $ddoc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $( $(#[doc = $doc])* $variant, )*
        }

        /// The dialect namespace.
        pub const DIALECT: &str = $dname;

        impl Op {
            /// Every op of the dialect, in table order.
            pub const ALL: &'static [Op] = &[ $(Op::$variant),* ];

            /// The mnemonic, without the dialect prefix.
            pub fn mnemonic(self) -> &'static str {
                match self { $(Op::$variant => $mn,)* }
            }

            /// Looks an op up by mnemonic.
            pub fn from_mnemonic(s: &str) -> Option<Op> {
                match s { $($mn => Some(Op::$variant),)* _ => None }
            }

            /// The op's static description.
            pub fn info(self) -> &'static $crate::dialect::OpInfo {
                match self {
                    $(Op::$variant => {
                        static INFO: $crate::dialect::OpInfo = $crate::dialect::OpInfo {
                            name: concat!($dname, ".", $mn),
                            doc: concat!($($doc, "\n"),*),
                            operands: &[$($crate::__slot!($oa $($ob)?)),*],
                            results: &[$($crate::__slot!($ra $($rb)?)),*],
                            attrs: &[$($crate::__attr_spec!($aq $an $ak)),*],
                            traits: &[$($crate::dialect::Trait::$tr),*],
                        };
                        &INFO
                    })*
                }
            }
        }
    };
}

/// An op of any dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Opcode {
    /// A `graph` op.
    Graph(crate::graph::Op),
    /// A `lowbit` op.
    Lowbit(crate::lowbit::Op),
    /// An `attn` op.
    Attn(crate::attn::Op),
    /// A `rot` op.
    Rot(crate::rot::Op),
    /// A `kernel` op.
    Kernel(crate::kernel::Op),
}

/// The dialect namespaces, in [`Opcode`] order.
pub const DIALECTS: &[&str] = &[
    crate::graph::DIALECT,
    crate::lowbit::DIALECT,
    crate::attn::DIALECT,
    crate::rot::DIALECT,
    crate::kernel::DIALECT,
];

impl Opcode {
    /// The op's static description.
    pub fn info(self) -> &'static OpInfo {
        match self {
            Opcode::Graph(op) => op.info(),
            Opcode::Lowbit(op) => op.info(),
            Opcode::Attn(op) => op.info(),
            Opcode::Rot(op) => op.info(),
            Opcode::Kernel(op) => op.info(),
        }
    }

    /// The full name, `dialect.mnemonic`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Looks up a full op name such as `graph.matmul`.
    pub fn from_name(name: &str) -> Option<Opcode> {
        let (d, m) = name.split_once('.')?;
        match d {
            "graph" => crate::graph::Op::from_mnemonic(m).map(Opcode::Graph),
            "lowbit" => crate::lowbit::Op::from_mnemonic(m).map(Opcode::Lowbit),
            "attn" => crate::attn::Op::from_mnemonic(m).map(Opcode::Attn),
            "rot" => crate::rot::Op::from_mnemonic(m).map(Opcode::Rot),
            "kernel" => crate::kernel::Op::from_mnemonic(m).map(Opcode::Kernel),
            _ => None,
        }
    }

    /// Every op of every dialect.
    pub fn all() -> impl Iterator<Item = Opcode> {
        let g = crate::graph::Op::ALL.iter().map(|&o| Opcode::Graph(o));
        let l = crate::lowbit::Op::ALL.iter().map(|&o| Opcode::Lowbit(o));
        let a = crate::attn::Op::ALL.iter().map(|&o| Opcode::Attn(o));
        let r = crate::rot::Op::ALL.iter().map(|&o| Opcode::Rot(o));
        let k = crate::kernel::Op::ALL.iter().map(|&o| Opcode::Kernel(o));
        g.chain(l).chain(a).chain(r).chain(k)
    }

    /// Shorthand for `info().has(Trait::Pure)`.
    pub fn is_pure(self) -> bool {
        self.info().has(Trait::Pure)
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
