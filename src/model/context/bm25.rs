//! Okapi BM25 over token ids: each document is a bag of token ids, the query a set of them.
//!
//! ```text
//! score(D, Q) = Σ_{t ∈ Q} idf(t) · f(t,D)·(k1 + 1) / (f(t,D) + k1·(1 − b + b·|D|/avgdl))
//! idf(t)      = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5))
//! ```
//! `N` documents, `n(t)` of them contain `t`, `f(t,D)` = occurrences of `t` in `D`, `avgdl` the
//! mean document length. The `+1` inside the logarithm is Lucene's: the classic Robertson–
//! Spärck Jones idf goes negative for a term in more than half the documents, which would make
//! matching a common term *lower* a document's score. The `(k1 + 1)` numerator factor is the
//! classic Okapi form (Lucene 8+ drops it; it scales every score alike, so rankings agree).
//!
//! Query terms are distinct ids: a question that repeats a word does not count it twice
//! (Lucene would sum a duplicated clause twice; with questions of a dozen tokens a repeated
//! function word would otherwise dominate). Everything is f64 so hand-computed scores compare
//! exactly up to rounding.

use std::collections::{HashMap, HashSet};

/// BM25's two constants (`rag.k1`, `rag.b`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25 {
    /// Term-frequency saturation: 0 makes a term's contribution independent of its count.
    pub k1: f64,
    /// Length normalization: 0 ignores document length, 1 fully normalizes by it.
    pub b: f64,
}

impl Bm25 {
    /// The Lucene idf of a term found in `n` of `docs` documents.
    pub fn idf(docs: usize, n: usize) -> f64 {
        let (docs, n) = (docs as f64, n as f64);
        (1.0 + (docs - n + 0.5) / (n + 0.5)).ln()
    }

    /// One score per document, for the distinct ids of `query` minus `ignore` (layout tokens
    /// such as the separator carry no meaning to match on).
    pub fn scores(&self, docs: &[&[u32]], query: &[u32], ignore: &[u32]) -> Vec<f64> {
        let mut terms: Vec<u32> = query
            .iter()
            .copied()
            .filter(|t| !ignore.contains(t))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // A fixed summation order makes scores reproducible run to run (HashSet order is not).
        terms.sort_unstable();
        if docs.is_empty() {
            return Vec::new();
        }
        let total: usize = docs.iter().map(|d| d.len()).sum();
        let avgdl = total as f64 / docs.len() as f64;
        // Term frequencies of the query terms only: documents are short (a chunk), queries
        // shorter, so a per-document map of the few terms that matter is all that is needed.
        let wanted: HashSet<u32> = terms.iter().copied().collect();
        let tf: Vec<HashMap<u32, usize>> = docs
            .iter()
            .map(|d| {
                let mut m = HashMap::new();
                for t in d.iter().filter(|t| wanted.contains(t)) {
                    *m.entry(*t).or_insert(0) += 1;
                }
                m
            })
            .collect();
        let idf: Vec<f64> = terms
            .iter()
            .map(|t| Self::idf(docs.len(), tf.iter().filter(|m| m.contains_key(t)).count()))
            .collect();
        docs.iter()
            .zip(&tf)
            .map(|(d, m)| {
                // avgdl is 0 only when every document is empty, and then every tf is 0 too.
                let norm = if avgdl > 0.0 {
                    self.k1 * (1.0 - self.b + self.b * d.len() as f64 / avgdl)
                } else {
                    self.k1
                };
                terms
                    .iter()
                    .zip(&idf)
                    .map(|(t, &w)| match m.get(t) {
                        Some(&f) => {
                            let f = f as f64;
                            w * f * (self.k1 + 1.0) / (f + norm)
                        }
                        None => 0.0,
                    })
                    .sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Bm25;

    #[test]
    fn a_term_in_every_document_still_scores_positive() {
        assert!(Bm25::idf(4, 4) > 0.0);
        assert!(Bm25::idf(4, 1) > Bm25::idf(4, 2));
    }

    #[test]
    fn repeated_and_ignored_query_terms_count_once_or_not_at_all() {
        let bm = Bm25 { k1: 1.2, b: 0.75 };
        let docs: [&[u32]; 2] = [&[1, 2, 3], &[3, 4, 5]];
        assert_eq!(
            bm.scores(&docs, &[2, 2, 2], &[]),
            bm.scores(&docs, &[2], &[])
        );
        assert_eq!(bm.scores(&docs, &[2, 9], &[2]), vec![0.0, 0.0]);
    }
}
