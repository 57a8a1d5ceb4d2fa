//! k-means: Lloyd's algorithm with greedy k-means++ initialisation, the same
//! algorithm and stopping rule as scikit-learn's `KMeans(algorithm="lloyd")`.
//!
//! Why our own and not linfa's: linfa's `KMeans` computes each point's
//! distances through generic per-row iterators and re-runs a separate pass to
//! recompute centroids; on our feature matrices it was several times slower
//! than scikit-learn (figures in docs/MODELS.md). Here one pass per iteration
//! assigns each row to its nearest centre *and* accumulates the new centres,
//! over contiguous row-major slices, split across threads when the matrix is
//! big enough to pay for them. linfa stays in use for Gaussian mixtures and
//! DBSCAN.

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Parameters of one k-means fit (scikit-learn's names in brackets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeansConfig {
    /// Number of clusters (`n_clusters`).
    pub k: usize,
    /// Independent k-means++ starts; the lowest inertia wins (`n_init`).
    pub n_init: usize,
    /// Iterations per start (`max_iter`).
    pub max_iterations: usize,
    /// Relative tolerance on the squared centre shift, scaled by the mean
    /// feature variance (`tol`).
    pub tolerance: f64,
    pub seed: u64,
    /// Worker threads for the assignment pass (1 = none spawned).
    pub threads: usize,
}

impl KMeansConfig {
    pub fn new(k: usize) -> KMeansConfig {
        KMeansConfig {
            k,
            n_init: 4,
            max_iterations: 300,
            tolerance: 1e-4,
            seed: 42,
            threads: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
                .min(2),
        }
    }
}

/// A fitted clustering.
#[derive(Debug, Clone)]
pub struct KMeansFit {
    /// k × features.
    pub centroids: Array2<f64>,
    /// The cluster of every training row.
    pub labels: Vec<usize>,
    /// Sum of squared distances of rows to their centre.
    pub inertia: f64,
    /// Lloyd iterations of the winning start.
    pub iterations: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KMeansError {
    #[error("k-means needs k >= 1 and at least k rows (k = {k}, rows = {rows})")]
    TooFewRows { k: usize, rows: usize },
    #[error("k-means input holds NaN or infinite values")]
    NotFinite,
}

/// Fits k-means to `data` (rows × features).
pub fn fit(data: ArrayView2<'_, f64>, config: &KMeansConfig) -> Result<KMeansFit, KMeansError> {
    let rows = data.nrows();
    let k = config.k;
    if k == 0 || rows < k {
        return Err(KMeansError::TooFewRows { k, rows });
    }
    if data.iter().any(|value| !value.is_finite()) {
        return Err(KMeansError::NotFinite);
    }
    let contiguous = data.as_standard_layout();
    let points = Points {
        values: contiguous.as_slice().unwrap_or(&[]),
        columns: data.ncols(),
    };
    let absolute_tolerance = config.tolerance * mean_variance(&points);
    let mut best: Option<KMeansFit> = None;
    for run in 0..config.n_init.max(1) {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(run as u64));
        let initial = kmeans_plus_plus(&points, k, &mut rng);
        let fit = lloyd(
            &points,
            initial,
            config.max_iterations.max(1),
            absolute_tolerance,
            config.threads,
        );
        if best
            .as_ref()
            .is_none_or(|current| fit.inertia < current.inertia)
        {
            best = Some(fit);
        }
    }
    best.ok_or(KMeansError::TooFewRows { k, rows })
}

/// Row-major points.
#[derive(Clone, Copy)]
struct Points<'a> {
    values: &'a [f64],
    columns: usize,
}

impl<'a> Points<'a> {
    fn rows(&self) -> usize {
        self.values.len().checked_div(self.columns).unwrap_or(0)
    }

    fn row(&self, index: usize) -> &'a [f64] {
        &self.values[index * self.columns..(index + 1) * self.columns]
    }
}

#[inline]
fn squared_distance(left: &[f64], right: &[f64]) -> f64 {
    left.iter().zip(right).map(|(a, b)| (a - b) * (a - b)).sum()
}

fn mean_variance(points: &Points<'_>) -> f64 {
    let rows = points.rows();
    if rows == 0 || points.columns == 0 {
        return 0.0;
    }
    let mut total = 0.0;
    for column in 0..points.columns {
        let mean = (0..rows).map(|row| points.row(row)[column]).sum::<f64>() / rows as f64;
        total += (0..rows)
            .map(|row| (points.row(row)[column] - mean).powi(2))
            .sum::<f64>()
            / rows as f64;
    }
    total / points.columns as f64
}

/// Greedy k-means++ (as scikit-learn): each new centre is the best of
/// 2 + ln(k) candidates drawn in proportion to squared distance.
fn kmeans_plus_plus(points: &Points<'_>, k: usize, rng: &mut impl Rng) -> Vec<f64> {
    let rows = points.rows();
    let columns = points.columns;
    let trials = 2 + (k as f64).ln().floor() as usize;
    let mut centres = Vec::with_capacity(k * columns);
    let first = rng.random_range(0..rows);
    centres.extend_from_slice(points.row(first));
    let mut closest: Vec<f64> = (0..rows)
        .map(|row| squared_distance(points.row(row), points.row(first)))
        .collect();
    let mut potential: f64 = closest.iter().sum();
    let mut candidate_closest = vec![0.0; rows];
    let mut best_closest = vec![0.0; rows];
    for _ in 1..k {
        let mut best_candidate = None;
        let mut best_potential = f64::INFINITY;
        for _ in 0..trials {
            let target = rng.random::<f64>() * potential;
            let candidate = pick_by_weight(&closest, target);
            let centre = points.row(candidate);
            let mut candidate_potential = 0.0;
            for (row, slot) in candidate_closest.iter_mut().enumerate() {
                *slot = closest[row].min(squared_distance(points.row(row), centre));
                candidate_potential += *slot;
            }
            if candidate_potential < best_potential {
                best_potential = candidate_potential;
                best_candidate = Some(candidate);
                std::mem::swap(&mut best_closest, &mut candidate_closest);
            }
        }
        let chosen = best_candidate.unwrap_or(0);
        centres.extend_from_slice(points.row(chosen));
        std::mem::swap(&mut closest, &mut best_closest);
        potential = best_potential;
    }
    centres
}

/// The first index whose running weight passes `target` (all-zero weights,
/// i.e. duplicate points: the last index).
fn pick_by_weight(weights: &[f64], target: f64) -> usize {
    let mut running = 0.0;
    for (index, weight) in weights.iter().enumerate() {
        running += weight;
        if running > target {
            return index;
        }
    }
    weights.len().saturating_sub(1)
}

/// What one assignment pass over a block of rows produces.
struct PassTotals {
    sums: Vec<f64>,
    counts: Vec<usize>,
    inertia: f64,
    changed: usize,
}

/// Assigns rows `[first, first + labels.len())` to their nearest centre and
/// accumulates the sums for the next centres.
fn assign_block(
    points: &Points<'_>,
    centres: &[f64],
    k: usize,
    first: usize,
    labels: &mut [usize],
    distances: &mut [f64],
) -> PassTotals {
    let columns = points.columns;
    let mut totals = PassTotals {
        sums: vec![0.0; k * columns],
        counts: vec![0; k],
        inertia: 0.0,
        changed: 0,
    };
    for (offset, (label, distance)) in labels.iter_mut().zip(distances.iter_mut()).enumerate() {
        let row = points.row(first + offset);
        let mut nearest = 0;
        let mut nearest_distance = f64::INFINITY;
        for cluster in 0..k {
            let candidate =
                squared_distance(row, &centres[cluster * columns..(cluster + 1) * columns]);
            if candidate < nearest_distance {
                nearest_distance = candidate;
                nearest = cluster;
            }
        }
        if *label != nearest {
            totals.changed += 1;
            *label = nearest;
        }
        *distance = nearest_distance;
        totals.inertia += nearest_distance;
        totals.counts[nearest] += 1;
        for (sum, value) in totals.sums[nearest * columns..(nearest + 1) * columns]
            .iter_mut()
            .zip(row)
        {
            *sum += value;
        }
    }
    totals
}

/// One assignment pass over all rows, on `threads` threads.
fn assign_all(
    points: &Points<'_>,
    centres: &[f64],
    k: usize,
    labels: &mut [usize],
    distances: &mut [f64],
    threads: usize,
) -> PassTotals {
    let rows = points.rows();
    // Below ~100k distance terms a thread costs more than it saves.
    let threads = if rows * k * points.columns < 100_000 {
        1
    } else {
        threads.clamp(1, 8)
    };
    if threads == 1 {
        return assign_block(points, centres, k, 0, labels, distances);
    }
    let block = rows.div_ceil(threads);
    let partials: Vec<PassTotals> = std::thread::scope(|scope| {
        let handles: Vec<_> = labels
            .chunks_mut(block)
            .zip(distances.chunks_mut(block))
            .enumerate()
            .map(|(index, (label_block, distance_block))| {
                scope.spawn(move || {
                    assign_block(
                        points,
                        centres,
                        k,
                        index * block,
                        label_block,
                        distance_block,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| handle.join().ok())
            .collect()
    });
    let mut totals = PassTotals {
        sums: vec![0.0; k * points.columns],
        counts: vec![0; k],
        inertia: 0.0,
        changed: 0,
    };
    for partial in partials {
        totals
            .sums
            .iter_mut()
            .zip(&partial.sums)
            .for_each(|(total, part)| *total += part);
        totals
            .counts
            .iter_mut()
            .zip(&partial.counts)
            .for_each(|(total, part)| *total += part);
        totals.inertia += partial.inertia;
        totals.changed += partial.changed;
    }
    totals
}

fn lloyd(
    points: &Points<'_>,
    mut centres: Vec<f64>,
    max_iterations: usize,
    tolerance: f64,
    threads: usize,
) -> KMeansFit {
    let rows = points.rows();
    let columns = points.columns;
    let k = centres.len() / columns.max(1);
    let mut labels = vec![usize::MAX; rows];
    let mut distances = vec![0.0; rows];
    let mut iterations = 0;
    let mut inertia;
    loop {
        iterations += 1;
        let totals = assign_all(points, &centres, k, &mut labels, &mut distances, threads);
        inertia = totals.inertia;
        // Strict convergence: nothing moved, the centres are final.
        if totals.changed == 0 {
            break;
        }
        let mut new_centres = totals.sums;
        for (cluster, &count) in totals.counts.iter().enumerate() {
            let centre = &mut new_centres[cluster * columns..(cluster + 1) * columns];
            if count == 0 {
                // An empty cluster takes the point farthest from its centre
                // (scikit-learn relocates the same way).
                let farthest = distances
                    .iter()
                    .enumerate()
                    .max_by(|left, right| left.1.total_cmp(right.1))
                    .map(|(row, _)| row)
                    .unwrap_or(0);
                centre.copy_from_slice(points.row(farthest));
                distances[farthest] = 0.0;
            } else {
                centre.iter_mut().for_each(|value| *value /= count as f64);
            }
        }
        let shift: f64 = squared_distance(&centres, &new_centres);
        centres = new_centres;
        if shift <= tolerance || iterations >= max_iterations {
            // Labels and inertia must describe the final centres.
            let totals = assign_all(points, &centres, k, &mut labels, &mut distances, threads);
            inertia = totals.inertia;
            break;
        }
    }
    KMeansFit {
        centroids: Array2::from_shape_vec((k, columns), centres)
            .unwrap_or_else(|_| Array2::zeros((k, columns))),
        labels,
        inertia,
        iterations,
    }
}

/// The nearest centroid of `row` and its Euclidean distance.
pub fn nearest(
    centroids: ArrayView2<'_, f64>,
    row: &[f64],
    among: Option<&[usize]>,
) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    let mut consider = |index: usize| {
        if let Some(centre) = centroids.row(index).as_slice() {
            let distance = squared_distance(row, centre);
            if distance < best.1 {
                best = (index, distance);
            }
        } else {
            let distance: f64 = centroids
                .row(index)
                .iter()
                .zip(row)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            if distance < best.1 {
                best = (index, distance);
            }
        }
    };
    match among {
        Some(indexes) => indexes
            .iter()
            .copied()
            .filter(|&index| index < centroids.nrows())
            .for_each(&mut consider),
        None => (0..centroids.nrows()).for_each(&mut consider),
    }
    (best.0, best.1.sqrt())
}

/// Mean silhouette of `labels` on at most `sample` rows (evenly spaced, so
/// the result is deterministic). 0 when fewer than two clusters are used.
pub fn silhouette(data: ArrayView2<'_, f64>, labels: &[usize], sample: usize) -> f64 {
    let rows = data.nrows();
    if rows < 3 {
        return 0.0;
    }
    let step = rows.div_ceil(sample.max(2));
    let chosen: Vec<usize> = (0..rows).step_by(step.max(1)).collect();
    let clusters = labels.iter().copied().max().map_or(0, |max| max + 1);
    let used: std::collections::BTreeSet<usize> = chosen.iter().map(|&row| labels[row]).collect();
    if used.len() < 2 {
        return 0.0;
    }
    let mut total = 0.0;
    let mut counted = 0usize;
    for &row in &chosen {
        let mut sums = vec![0.0; clusters];
        let mut counts = vec![0usize; clusters];
        for &other in &chosen {
            if other == row {
                continue;
            }
            let distance: f64 = data
                .row(row)
                .iter()
                .zip(data.row(other))
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt();
            sums[labels[other]] += distance;
            counts[labels[other]] += 1;
        }
        let own = labels[row];
        if counts[own] == 0 {
            // A singleton's silhouette is 0 by convention.
            counted += 1;
            continue;
        }
        let inside = sums[own] / counts[own] as f64;
        let outside = (0..clusters)
            .filter(|&cluster| cluster != own && counts[cluster] > 0)
            .map(|cluster| sums[cluster] / counts[cluster] as f64)
            .fold(f64::INFINITY, f64::min);
        if outside.is_finite() {
            let spread = inside.max(outside);
            total += if spread > 0.0 {
                (outside - inside) / spread
            } else {
                0.0
            };
        }
        counted += 1;
    }
    if counted == 0 {
        0.0
    } else {
        total / counted as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn blobs() -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let centres = [[0.0, 0.0], [10.0, 10.0], [-10.0, 8.0]];
        let mut values = Vec::new();
        for _ in 0..200 {
            for centre in centres {
                values.push(centre[0] + rng.random_range(-1.0..1.0));
                values.push(centre[1] + rng.random_range(-1.0..1.0));
            }
        }
        Array2::from_shape_vec((600, 2), values).expect("shape")
    }

    #[test]
    fn finds_three_separated_blobs() {
        let data = blobs();
        let fit = fit(data.view(), &KMeansConfig::new(3)).expect("fits");
        let mut found: Vec<(i64, i64)> = fit
            .centroids
            .rows()
            .into_iter()
            .map(|row| (row[0].round() as i64, row[1].round() as i64))
            .collect();
        found.sort();
        assert_eq!(found, vec![(-10, 8), (0, 0), (10, 10)]);
        // every blob's rows share one label
        for blob in 0..3 {
            let first = fit.labels[blob];
            assert!((0..200).all(|index| fit.labels[index * 3 + blob] == first));
        }
        assert!(silhouette(data.view(), &fit.labels, 300) > 0.8);
    }

    #[test]
    fn threaded_and_single_threaded_agree() {
        let data = blobs();
        let big = ndarray::concatenate(ndarray::Axis(0), &[data.view(); 60]).expect("concatenates");
        let mut config = KMeansConfig::new(3);
        config.threads = 1;
        let single = fit(big.view(), &config).expect("fits");
        config.threads = 2;
        let threaded = fit(big.view(), &config).expect("fits");
        assert_eq!(single.labels, threaded.labels);
        assert!((single.inertia - threaded.inertia).abs() <= 1e-6 * single.inertia);
    }

    #[test]
    fn rejects_too_few_rows_and_nan() {
        let data = array![[1.0, 2.0]];
        assert_eq!(
            fit(data.view(), &KMeansConfig::new(2)).expect_err("too few"),
            KMeansError::TooFewRows { k: 2, rows: 1 }
        );
        let data = array![[1.0, f64::NAN], [0.0, 0.0]];
        assert_eq!(
            fit(data.view(), &KMeansConfig::new(1)).expect_err("nan"),
            KMeansError::NotFinite
        );
    }

    #[test]
    fn identical_points_do_not_break_it() {
        let data = Array2::from_elem((10, 3), 5.0);
        let fit = fit(data.view(), &KMeansConfig::new(3)).expect("fits");
        assert_eq!(fit.inertia, 0.0);
    }
}
