//! Hadamard matrices: the one definition `rot.hadamard` means, shared by the interpreter,
//! the passes and the code generators.
//!
//! A Hadamard matrix of order `n` has entries `±1` and satisfies `H·Hᵀ = n·I`. lowbit builds
//! `H_n = H_K ⊗ H_{2^m}` (Kronecker product, `H_K` the outer factor) for `n = K · 2^m`:
//!
//! - `H_{2^m}` is Sylvester's: `H_1 = [1]`, `H_{2k} = [[H_k, H_k], [H_k, -H_k]]`, so entry
//!   `(i, j)` is `(-1)^popcount(i & j)` and the matrix is symmetric.
//! - `H_K` for `K > 1` comes from a Paley construction over the finite field `GF(q)`, `q` an
//!   odd prime power, with the Jacobsthal matrix `Q[a][b] = χ(a - b)` (`χ` the quadratic
//!   character: 0 at 0, 1 on non-zero squares, -1 elsewhere; rows and columns indexed by the
//!   field elements in the order of their encoding below):
//!   - **Paley I**, `K = q + 1` with `q ≡ 3 (mod 4)`: `H_K = I + [[0, 1ᵀ], [-1, Q]]`;
//!   - **Paley II**, `K = 2(q + 1)` with `q ≡ 1 (mod 4)`: with the symmetric conference
//!     matrix `C = [[0, 1ᵀ], [1, Q]]`, `H_K = C ⊗ [[1, 1], [1, -1]] + I ⊗ [[1, -1], [-1, -1]]`.
//!
//! The factorization is chosen deterministically: the **smallest** `K` (largest `m`) for
//! which `K = 1` or a construction exists, and Paley I before Paley II when both build `K`
//! (12 = 11 + 1 = 2·(5 + 1) uses Paley I). So 12, 20, 28 (q = 27), 44, 60 are Paley I, 36
//! and 52 (q = 25) Paley II, 24 = 12·2 and 40 = 20·2.
//!
//! Field encoding for `q = p^k`: the integer `a = Σ c_i p^i` (`0 ≤ c_i < p`) is the
//! polynomial `Σ c_i t^i` modulo the monic irreducible `t^k + Σ f_i t^i` of degree `k` whose
//! coefficient code `Σ f_i p^i` is smallest. For a prime `q` (`k = 1`) this is plain
//! arithmetic mod `q`. Subtraction is digit-wise mod `p` and `χ(x) = x^((q-1)/2)`.

/// The construction of the non-Sylvester factor `H_K`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    /// `K = 1`: `n` is a power of two.
    One,
    /// Paley I over `GF(q)`, `K = q + 1`.
    PaleyI(usize),
    /// Paley II over `GF(q)`, `K = 2(q + 1)`.
    PaleyII(usize),
}

/// Whether a Hadamard matrix of order `n` can be built (see the module docs).
pub fn is_supported(n: usize) -> bool {
    factor(n).is_some()
}

/// The unnormalized Hadamard matrix of order `n` (entries `±1`, row-major, `n·n` of them),
/// or `None` when `n` is not supported. Takes `O(n²)` memory: large transforms should use
/// [`factorization`], [`base_hadamard`] and [`fwht`] instead, as the interpreter does.
pub fn hadamard_matrix(n: usize) -> Option<Vec<f64>> {
    let (k, pow2) = factorization(n)?;
    let hk = base_hadamard(k)?;
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let outer = hk[(i / pow2) * k + j / pow2];
            let inner = if ((i % pow2) & (j % pow2)).count_ones() % 2 == 0 {
                1.0
            } else {
                -1.0
            };
            h[i * n + j] = outer * inner;
        }
    }
    Some(h)
}

/// The factorization `n = K · 2^m` lowbit uses, as `(K, 2^m)`: the smallest `K` that is 1
/// or has a Paley construction. `None` when `n` is not supported.
pub fn factorization(n: usize) -> Option<(usize, usize)> {
    factor(n).map(|(_, pow2)| (n / pow2, pow2))
}

/// The unnormalized `K × K` factor `H_K` (row-major) of [`factorization`], or `None` when
/// `K` has no construction here.
pub fn base_hadamard(k: usize) -> Option<Vec<f64>> {
    base_of(k).map(base_matrix)
}

/// The unnormalized Sylvester transform in place: `x ← x · H_{2^m}` (`H` symmetric), with
/// `x.len()` a power of two (or 0). The usual butterfly, `O(n log n)`.
pub fn fwht(x: &mut [f64]) {
    debug_assert!(x.len() <= 1 || x.len().is_power_of_two());
    let mut h = 1;
    while h < x.len() {
        for start in (0..x.len()).step_by(2 * h) {
            for i in start..start + h {
                let (a, b) = (x[i], x[i + h]);
                x[i] = a + b;
                x[i + h] = a - b;
            }
        }
        h *= 2;
    }
}

/// Splits `n` into its base construction and the power of two `2^m`, smallest `K` first.
fn factor(n: usize) -> Option<(Base, usize)> {
    if n == 0 {
        return None;
    }
    let tz = n.trailing_zeros();
    (0..=tz).rev().find_map(|m| {
        let pow2 = 1usize << m;
        base_of(n / pow2).map(|b| (b, pow2))
    })
}

/// How `H_K` is built, Paley I preferred.
fn base_of(k: usize) -> Option<Base> {
    if k == 1 {
        return Some(Base::One);
    }
    let q = k - 1;
    if q % 4 == 3 && prime_power(q).is_some() {
        return Some(Base::PaleyI(q));
    }
    if k & 1 == 0 && k >= 4 {
        let q = k / 2 - 1;
        if q % 4 == 1 && prime_power(q).is_some() {
            return Some(Base::PaleyII(q));
        }
    }
    None
}

/// `(p, e)` with `q = p^e`, `p` prime, or `None`.
fn prime_power(q: usize) -> Option<(usize, u32)> {
    if q < 2 {
        return None;
    }
    // The smallest divisor is at most √q, or q itself is prime: O(√q), so a crafted huge
    // dimension cannot stall verification.
    let p = (2..)
        .take_while(|&d| d <= q / d)
        .find(|&d| q.is_multiple_of(d))
        .unwrap_or(q);
    let (mut r, mut e) = (q, 0);
    while r % p == 0 {
        r /= p;
        e += 1;
    }
    (r == 1).then_some((p, e))
}

fn base_matrix(base: Base) -> Vec<f64> {
    match base {
        Base::One => vec![1.0],
        Base::PaleyI(q) => {
            let chi = jacobsthal(q);
            let k = q + 1;
            let mut h = vec![0.0; k * k];
            for i in 0..k {
                for j in 0..k {
                    let s = match (i, j) {
                        (0, 0) => 0.0,
                        (0, _) => 1.0,
                        (_, 0) => -1.0,
                        _ => chi[(i - 1) * q + (j - 1)],
                    };
                    h[i * k + j] = s + if i == j { 1.0 } else { 0.0 };
                }
            }
            h
        }
        Base::PaleyII(q) => {
            let chi = jacobsthal(q);
            let c = q + 1;
            let conf = |i: usize, j: usize| -> f64 {
                match (i, j) {
                    (0, 0) => 0.0,
                    (0, _) | (_, 0) => 1.0,
                    _ => chi[(i - 1) * q + (j - 1)],
                }
            };
            const A: [[f64; 2]; 2] = [[1.0, 1.0], [1.0, -1.0]];
            const B: [[f64; 2]; 2] = [[1.0, -1.0], [-1.0, -1.0]];
            let k = 2 * c;
            let mut h = vec![0.0; k * k];
            for i in 0..k {
                for j in 0..k {
                    let (bi, bj, ii, jj) = (i / 2, j / 2, i % 2, j % 2);
                    let diag = if bi == bj { B[ii][jj] } else { 0.0 };
                    h[i * k + j] = conf(bi, bj) * A[ii][jj] + diag;
                }
            }
            h
        }
    }
}

/// The Jacobsthal matrix `Q[a][b] = χ(a - b)` of `GF(q)`, row-major `q × q`.
fn jacobsthal(q: usize) -> Vec<f64> {
    let field = Field::new(q);
    let chi: Vec<f64> = (0..q).map(|x| field.chi(x)).collect();
    let mut out = vec![0.0; q * q];
    for a in 0..q {
        for b in 0..q {
            out[a * q + b] = chi[field.sub(a, b)];
        }
    }
    out
}

/// `GF(p^k)` with elements encoded as integers (see the module docs).
struct Field {
    p: usize,
    k: usize,
    q: usize,
    /// The low coefficients `f_0 .. f_{k-1}` of the monic modulus.
    modulus: Vec<usize>,
}

impl Field {
    fn new(q: usize) -> Field {
        let (p, e) = prime_power(q).expect("a prime power");
        let k = e as usize;
        let modulus = (0..q)
            .map(|code| digits(code, p, k))
            .find(|f| irreducible(f, p))
            .expect("an irreducible polynomial of every degree exists");
        Field { p, k, q, modulus }
    }

    fn sub(&self, a: usize, b: usize) -> usize {
        let (da, db) = (digits(a, self.p, self.k), digits(b, self.p, self.k));
        let d: Vec<usize> = da
            .iter()
            .zip(&db)
            .map(|(x, y)| (x + self.p - y) % self.p)
            .collect();
        undigits(&d, self.p)
    }

    fn mul(&self, a: usize, b: usize) -> usize {
        let (da, db) = (digits(a, self.p, self.k), digits(b, self.p, self.k));
        let mut prod = vec![0usize; 2 * self.k];
        for (i, x) in da.iter().enumerate() {
            for (j, y) in db.iter().enumerate() {
                prod[i + j] = (prod[i + j] + x * y) % self.p;
            }
        }
        // Reduce with t^k = -Σ f_i t^i, from the top degree down.
        for deg in (self.k..2 * self.k).rev() {
            let c = prod[deg];
            if c != 0 {
                prod[deg] = 0;
                for (i, f) in self.modulus.iter().enumerate() {
                    let t = &mut prod[deg - self.k + i];
                    *t = (*t + self.p * self.p - c * f % self.p) % self.p;
                }
            }
        }
        undigits(&prod[..self.k], self.p)
    }

    /// The quadratic character.
    fn chi(&self, x: usize) -> f64 {
        if x == 0 {
            return 0.0;
        }
        let mut r = 1;
        for _ in 0..(self.q - 1) / 2 {
            r = self.mul(r, x);
        }
        if r == 1 {
            1.0
        } else {
            -1.0
        }
    }
}

fn digits(mut a: usize, p: usize, k: usize) -> Vec<usize> {
    (0..k)
        .map(|_| {
            let d = a % p;
            a /= p;
            d
        })
        .collect()
}

fn undigits(d: &[usize], p: usize) -> usize {
    d.iter().rev().fold(0, |acc, &x| acc * p + x)
}

/// Whether the monic `t^k + Σ low[i] t^i` is irreducible over `GF(p)`: no monic divisor
/// of degree `1 ..= k/2`.
fn irreducible(low: &[usize], p: usize) -> bool {
    let k = low.len();
    let mut f = low.to_vec();
    f.push(1);
    for deg in 1..=k / 2 {
        for code in 0..p.pow(deg as u32) {
            let mut g = digits(code, p, deg);
            g.push(1);
            if poly_rem(&f, &g, p).iter().all(|&c| c == 0) {
                return false;
            }
        }
    }
    true
}

/// `f mod g` over `GF(p)`, `g` monic; coefficients lowest first.
fn poly_rem(f: &[usize], g: &[usize], p: usize) -> Vec<usize> {
    let mut r = f.to_vec();
    let dg = g.len() - 1;
    for top in (dg..r.len()).rev() {
        let c = r[top];
        if c != 0 {
            for (i, gi) in g.iter().enumerate() {
                let t = &mut r[top - dg + i];
                *t = (*t + p * p - c * gi % p) % p;
            }
        }
    }
    r.truncate(dg);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defining property, checked independently of how the matrix was built.
    #[test]
    fn orthogonal_for_every_supported_order() {
        let mut count = 0;
        for n in 1..=256 {
            let Some(h) = hadamard_matrix(n) else {
                assert!(!is_supported(n));
                continue;
            };
            count += 1;
            assert!(
                h.iter().all(|&x| x == 1.0 || x == -1.0),
                "order {n}: entries ±1"
            );
            for i in 0..n {
                for j in 0..n {
                    let dot: f64 = (0..n).map(|c| h[i * n + c] * h[j * n + c]).sum();
                    let want = if i == j { n as f64 } else { 0.0 };
                    assert_eq!(dot, want, "order {n}: (H·Hᵀ)[{i}][{j}]");
                }
            }
        }
        assert!(count >= 40, "only {count} orders supported");
    }

    /// A cubic extension field: Paley I over GF(7^3), order 344.
    #[test]
    fn orthogonal_over_gf343() {
        let n = 344;
        let h = hadamard_matrix(n).unwrap();
        for i in 0..n {
            for j in 0..n {
                let dot: f64 = (0..n).map(|c| h[i * n + c] * h[j * n + c]).sum();
                assert_eq!(dot, if i == j { n as f64 } else { 0.0 }, "(H·Hᵀ)[{i}][{j}]");
            }
        }
    }

    /// Every size the verifier accepts for `rot.hadamard` has a matrix here.
    #[test]
    fn verified_sizes_are_buildable() {
        use crate::ir::parse::parse_module;
        use crate::ir::verify::verify_module;
        for n in 1..=512 {
            let src = format!(
                "func @f(%a: tensor<{n}xf32>) -> tensor<{n}xf32> {{\n  %0 = rot.hadamard %a {{axis = 0 : i64}} : tensor<{n}xf32>\n  return %0\n}}\n"
            );
            let m = parse_module(&src, "h.mlir", 0).expect("parses");
            if verify_module(&m).is_ok() {
                assert!(
                    is_supported(n),
                    "size {n} verifies but has no Hadamard matrix"
                );
            }
        }
    }

    #[test]
    fn supported_orders() {
        for n in [
            1, 2, 4, 8, 12, 16, 20, 24, 28, 36, 40, 44, 52, 60, 64, 76, 120, 1536, 2560, 3584,
            14336,
        ] {
            assert!(is_supported(n), "order {n}");
        }
        for n in [0, 3, 5, 6, 10, 18, 22, 34] {
            assert!(!is_supported(n), "order {n}");
        }
        // 11008 = 344 · 32 with Paley I over GF(7^3).
        assert_eq!(factor(11008), Some((Base::PaleyI(343), 32)));
    }

    #[test]
    fn chosen_factorizations() {
        assert_eq!(factor(64), Some((Base::One, 64)));
        assert_eq!(factor(12), Some((Base::PaleyI(11), 1)));
        assert_eq!(factor(24), Some((Base::PaleyI(11), 2)));
        assert_eq!(factor(28), Some((Base::PaleyI(27), 1)));
        assert_eq!(factor(36), Some((Base::PaleyII(17), 1)));
        assert_eq!(factor(40), Some((Base::PaleyI(19), 2)));
        assert_eq!(factor(52), Some((Base::PaleyII(25), 1)));
    }

    #[test]
    fn sylvester_is_symmetric_and_small_cases_are_known() {
        let h = hadamard_matrix(4).unwrap();
        let want = [
            1., 1., 1., 1., 1., -1., 1., -1., 1., 1., -1., -1., 1., -1., -1., 1.,
        ];
        assert_eq!(h, want);
        // Paley I, q = 3: Q = [[0, -1, 1], [1, 0, -1], [-1, 1, 0]] (χ(1) = 1, χ(2) = -1);
        // only reachable as a base, since 4 is a power of two.
        let h = base_matrix(Base::PaleyI(3));
        let want = [
            1., 1., 1., 1., -1., 1., -1., 1., -1., 1., 1., -1., -1., -1., 1., 1.,
        ];
        assert_eq!(h, want);
    }

    #[test]
    fn fwht_matches_the_matrix() {
        let n = 16;
        let h = hadamard_matrix(n).unwrap();
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
        let mut y = x.clone();
        fwht(&mut y);
        for (j, yj) in y.iter().enumerate() {
            let want: f64 = (0..n).map(|i| x[i] * h[i * n + j]).sum();
            assert!((yj - want).abs() < 1e-12, "column {j}");
        }
        assert_eq!(factorization(40), Some((20, 2)));
        assert_eq!(base_hadamard(20).map(|m| m.len()), Some(400));
        assert_eq!(base_hadamard(10), None);
    }

    #[test]
    fn field_arithmetic() {
        // GF(9) = GF(3)[t] / (t^2 + 1): t·t = -1 = 2.
        let f = Field::new(9);
        assert_eq!(f.modulus, vec![1, 0]);
        assert_eq!(f.mul(3, 3), 2);
        let squares: Vec<usize> = (1..9).filter(|&x| f.chi(x) == 1.0).collect();
        assert_eq!(squares.len(), 4);
        // In GF(p), χ is the Legendre symbol.
        let f = Field::new(7);
        let chi: Vec<f64> = (0..7).map(|x| f.chi(x)).collect();
        assert_eq!(chi, [0., 1., 1., -1., 1., -1., -1.]);
    }
}
