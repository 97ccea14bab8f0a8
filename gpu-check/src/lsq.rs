//! Linear least squares on `f64`: modified Gram-Schmidt QR with re-orthogonalisation and
//! detection of dependent columns.
//!
//! Columns are taken in order; a column whose component orthogonal to the columns already taken
//! is below `1e-9` of its norm is dropped (its coefficient is `None`). So put the terms to keep
//! first and the ones that may be redundant last.

/// Result of [`lstsq`]: one coefficient per column (`None` for dropped, dependent columns).
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// Coefficients, in column order.
    pub coef: Vec<Option<f64>>,
}

impl Solution {
    /// Coefficient `i`, 0 when the column was dropped.
    pub fn get(&self, i: usize) -> f64 {
        self.coef[i].unwrap_or(0.0)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `|| sum_j coef_j * cols[j] - y ||` over the coefficients. Every column must have
/// `y.len()` entries. Fails when there are no rows or a value is not finite.
pub fn lstsq(cols: &[Vec<f64>], y: &[f64]) -> Result<Solution, String> {
    let n = y.len();
    if n == 0 {
        return Err("least squares: no data".into());
    }
    if cols.iter().any(|c| c.len() != n) {
        return Err("least squares: columns and data differ in length".into());
    }
    if cols.iter().flatten().chain(y).any(|v| !v.is_finite()) {
        return Err("least squares: a value is not finite".into());
    }
    // Q holds orthonormal columns; r[k] is the row of R for the k-th kept column.
    let mut q: Vec<Vec<f64>> = Vec::new();
    let mut r: Vec<Vec<f64>> = Vec::new();
    let mut kept: Vec<usize> = Vec::new();
    for (j, col) in cols.iter().enumerate() {
        let norm0 = dot(col, col).sqrt();
        if norm0 == 0.0 {
            continue;
        }
        let mut v = col.clone();
        let mut proj = vec![0.0; q.len()];
        for _pass in 0..2 {
            for (k, qk) in q.iter().enumerate() {
                let p = dot(qk, &v);
                proj[k] += p;
                v.iter_mut().zip(qk).for_each(|(vi, qi)| *vi -= p * qi);
            }
        }
        let norm = dot(&v, &v).sqrt();
        if norm < 1e-9 * norm0 {
            continue;
        }
        v.iter_mut().for_each(|vi| *vi /= norm);
        for (k, row) in r.iter_mut().enumerate() {
            row.push(proj[k]);
        }
        let mut row = vec![0.0; q.len()];
        row.push(norm);
        r.push(row);
        q.push(v);
        kept.push(j);
    }
    // R is upper triangular: r[k][m] for m >= k. Solve R b = Q^T y.
    let qty: Vec<f64> = q.iter().map(|qk| dot(qk, y)).collect();
    let m = kept.len();
    let mut b = vec![0.0; m];
    for k in (0..m).rev() {
        let s: f64 = (k + 1..m).map(|i| r[k][i] * b[i]).sum();
        b[k] = (qty[k] - s) / r[k][k];
    }
    let mut coef = vec![None; cols.len()];
    for (k, &j) in kept.iter().enumerate() {
        coef[j] = Some(b[k]);
    }
    Ok(Solution { coef })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_fit_recovers_coefficients() {
        let x: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let ones = vec![1.0; 50];
        let x2: Vec<f64> = x.iter().map(|v| v * v * 1e6).collect();
        let y: Vec<f64> = x.iter().map(|v| 3.0 - 2.0 * v + 5e-7 * v * v * 1e6).collect();
        let s = lstsq(&[ones, x, x2], &y).unwrap();
        assert!((s.get(0) - 3.0).abs() < 1e-9, "{s:?}");
        assert!((s.get(1) + 2.0).abs() < 1e-9, "{s:?}");
        assert!((s.get(2) - 5e-7).abs() < 1e-15, "{s:?}");
    }

    #[test]
    fn dependent_column_is_dropped() {
        let x: Vec<f64> = (1..20).map(|i| i as f64).collect();
        let ones = vec![1.0; x.len()];
        let twice: Vec<f64> = x.iter().map(|v| 2.0 * v + 1.0).collect();
        let y: Vec<f64> = x.iter().map(|v| 1.0 + v).collect();
        let s = lstsq(&[ones, x, twice], &y).unwrap();
        assert_eq!(s.coef[2], None);
        assert!((s.get(0) - 1.0).abs() < 1e-9 && (s.get(1) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn least_squares_of_inconsistent_system() {
        // Mean of the data for a constant model.
        let s = lstsq(&[vec![1.0; 4]], &[1.0, 2.0, 3.0, 6.0]).unwrap();
        assert!((s.get(0) - 3.0).abs() < 1e-12);
        assert!(lstsq(&[vec![1.0]], &[f64::NAN]).is_err());
        assert!(lstsq(&[], &[]).is_err());
    }
}
