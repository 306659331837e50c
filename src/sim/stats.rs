//! Small statistics for the demo and the benchmark reports.

/// The `p` quantile (0.0–1.0) by nearest rank; 0 for no samples. Sorts in place.
pub fn percentile(v: &mut [i64], p: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    v[i.min(v.len() - 1)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank() {
        let mut v: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(super::percentile(&mut v, 0.5), 51);
        assert_eq!(super::percentile(&mut v, 0.99), 99);
        assert_eq!(super::percentile(&mut [], 0.5), 0);
    }
}
