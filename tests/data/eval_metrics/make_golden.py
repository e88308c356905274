#!/usr/bin/env python3
# Regenerate with (from the repository root):
#   python3 -m venv /tmp/metricsvenv && /tmp/metricsvenv/bin/pip install rouge-score==0.1.2 sacrebleu==2.6.0
#   /tmp/metricsvenv/bin/python tests/data/eval_metrics/make_golden.py
# Writes tests/data/eval_metrics/golden.json next to this script. Made with Python 3.11.7
# (Unicode 14.0.0), rouge-score 0.1.2, sacrebleu 2.6.0.
"""Golden values for src/eval/ from the official reference implementations.

- SQuAD v1.1: the normalize/EM/F1/max-over-golds functions below are copied verbatim from the
  official evaluate-v1.1.py script (it is not a pip package).
- ROUGE-L: rouge_score.rouge_scorer.RougeScorer(['rougeL'], use_stemmer=False).
- BLEU: sacrebleu.corpus_bleu(hyps, [refs]) with its defaults and sacrebleu.sentence_bleu, plus
  the metric's signature string.
"""
import json
import os
import re
import string
import sys
import unicodedata
from collections import Counter
from importlib.metadata import version

import sacrebleu
from rouge_score import rouge_scorer, tokenize as rouge_tokenize
from sacrebleu.metrics import BLEU


# ---- official SQuAD v1.1 evaluation functions (verbatim) ----
def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return (normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)
# ---- end of official SQuAD v1.1 functions ----


LONG_REF = ("The Dynamic Sparse Retriever scores every chunk of the document against the question, "
            "keeps the top sixteen chunks, and passes only those to the sub-quadratic attention layers, "
            "which in turn write compressed summaries into a rotating key-value cache of fixed size.")
LONG_PRED = ("The dynamic sparse retriever scores each chunk of the document against the question and "
             "keeps the top 16 chunks; only those reach the sub-quadratic attention layers, which write "
             "compressed summaries into a rotating KV cache of a fixed size.")

# (prediction, [gold answers]); ROUGE-L and BLEU use the first gold as the reference.
ITEMS = [
    ("Denver Broncos", ["Denver Broncos"]),                                   # identical
    ("the Denver Broncos", ["Denver Broncos", "The Broncos"]),                # article + 2 golds
    ("denver broncos!", ["Denver Broncos."]),                                 # case + punctuation
    ("the cat sat", ["a cat sat down"]),                                      # hand-checked case
    ("Paris", ["London"]),                                                    # disjoint
    ("", ["Santa Clara, California"]),                                        # empty prediction
    ("the", ["the"]),                                                         # empty after normalization, both
    ("an", ["A cat"]),                                                        # empty-after-norm vs non-empty
    ("Santa Clara", ["Santa Clara, California", "Levi's Stadium", "Santa Clara"]),
    ("café au lait", ["Café au lait"]),                                       # unicode letters, casing
    ("naïve Bayes", ["naive Bayes"]),                                         # diacritic differs
    ("cafe\u0301", ["café"]),                                                 # NFD vs NFC
    ("3.5 million", ["3.5 million people"]),                                  # decimal number
    ("1,000 dollars", ["$1,000"]),                                            # thousands separator
    ("state-of-the-art model", ["state of the art model"]),                   # hyphens
    ("10-20 years", ["10 - 20 years", "between 10 and 20 years"]),            # digit dash
    ("the U.S. Army", ["U.S. Army", "United States Army"]),                   # abbreviation
    ("don't stop", ["do not stop", "don't stop believing"]),                  # apostrophe
    ("\"quoted\" answer", ["'quoted' answer"]),                               # quotes
    ("(in parentheses)", ["in parentheses"]),                                 # parentheses
    ("the the the cat", ["the cat cat"]),                                     # repeated tokens
    ("cat cat cat dog", ["cat dog dog"]),                                     # repeated tokens, counter &
    ("dog cat", ["cat dog"]),                                                 # same bag, other order
    ("a an the", ["an a the"]),                                               # articles only
    ("theater an anthem", ["the ater anthem"]),                               # articles inside words kept
    (LONG_PRED, [LONG_REF]),                                                  # long sentence
    ("It was founded in 1889 by Gaudí.", ["in 1889", "1889"]),
    ("Nikola Tesla", ["Tesla", "Nikola Tesla", "N. Tesla"]),
    ("e.g., the 2nd edition", ["the second edition"]),
    ("  lots   of\tspaces \n here ", ["lots of spaces here"]),                # whitespace kinds
    ("AT&amp;T &lt;corp&gt;", ["AT&T <corp>"]),                               # 13a entity rules
    ("word <skipped> gap", ["word gap"]),                                     # 13a <skipped>
    ("line-\nbreak", ["linebreak"]),                                          # 13a '-\n' join
    ("price: $5.00 (approx.)", ["$5.00"]),                                    # period between digits
    ("end.", ["end ."]),                                                      # trailing period
    ("1.5. Next, 2,5 and a.b", ["1.5 . next , 2,5 and a.b"]),                 # 13a period/comma rules
    ("x..y, ,z", ["x . . y , , z"]),                                          # adjacent punctuation
    ("a\x1fb", ["a b"]),                                                      # U+001F is str.isspace
    ("non\u00a0breaking space", ["non breaking space"]),                      # NBSP whitespace
    ("ΟΔΟΣ ΣΟΦΙΑ", ["οδος σοφια"]),                                          # Greek final sigma
    ("İstanbul \u212a", ["istanbul k"]),                                      # İ and Kelvin sign lowercase
    ("the\u064b cat", ["cat"]),                                               # Arabic mark (Mn) ends a word
    ("the\u24d0 cat", ["cat"]),                                               # circled letter (So) ends a word
    ("the_cat", ["cat"]),                                                     # underscore is punctuation
    ("50% — “smart” quotes…", ["50 smart quotes"]),                           # non-ASCII punctuation
    ("North America", ["North America", "N. America"]),
    ("The quick brown fox jumps over the lazy dog",
     ["The quick brown dog jumps on the log."]),
]

SENTENCE_BLEU_IDX = [0, 3, 4, 5, 14, 25, 29, 35, 46]


def bleu_dict(score, metric):
    return {
        "score": score.score,
        "counts": list(score.counts),
        "totals": list(score.totals),
        "precisions": list(score.precisions),
        "bp": score.bp,
        "sys_len": score.sys_len,
        "ref_len": score.ref_len,
        "signature": str(metric.get_signature()),
    }


def main():
    scorer = rouge_scorer.RougeScorer(['rougeL'], use_stemmer=False)
    bleu_metric = BLEU()  # same defaults as sacrebleu.corpus_bleu
    items = []
    for pred, golds in ITEMS:
        ref = golds[0]
        rl = scorer.score(ref, pred)['rougeL']
        items.append({
            "pred": pred,
            "golds": golds,
            "norm_pred": normalize_answer(pred),
            "norm_golds": [normalize_answer(g) for g in golds],
            "em_per_gold": [float(exact_match_score(pred, g)) for g in golds],
            "f1_per_gold": [float(f1_score(pred, g)) for g in golds],
            "em": float(metric_max_over_ground_truths(exact_match_score, pred, golds)),
            "f1": float(metric_max_over_ground_truths(f1_score, pred, golds)),
            "rouge_tokens_pred": rouge_tokenize.tokenize(pred, None),
            "rouge_tokens_ref": rouge_tokenize.tokenize(ref, None),
            "rouge_l": {"precision": rl.precision, "recall": rl.recall, "fmeasure": rl.fmeasure},
            "tok13a_pred": bleu_metric._preprocess_segment(pred),
            "tok13a_ref": bleu_metric._preprocess_segment(ref),
        })

    hyps = [p for p, _ in ITEMS]
    refs = [g[0] for _, g in ITEMS]
    corpus = sacrebleu.corpus_bleu(hyps, [refs])
    assert str(corpus) == str(bleu_metric.corpus_score(hyps, [refs]))
    corpus_d = bleu_dict(corpus, bleu_metric)

    sentence = []
    for i in SENTENCE_BLEU_IDX:
        pred, golds = ITEMS[i]
        s = sacrebleu.sentence_bleu(pred, [golds[0]])
        m = BLEU(effective_order=True)
        m.sentence_score(pred, [golds[0]])
        d = bleu_dict(s, m)
        d.update({"pred": pred, "ref": golds[0]})
        sentence.append(d)

    n = len(items)
    task = {
        "exact_match": sum(it["em"] for it in items) / n,
        "f1": sum(it["f1"] for it in items) / n,
        "rouge_l_f": sum(it["rouge_l"]["fmeasure"] for it in items) / n,
        "bleu": corpus.score,
        "count": n,
    }

    out = {
        "generator": {
            "python": sys.version.split()[0],
            "unicode": unicodedata.unidata_version,
            "rouge_score": version("rouge-score"),
            "sacrebleu": version("sacrebleu"),
        },
        "items": items,
        "corpus_bleu": corpus_d,
        "sentence_bleu": sentence,
        "task_scores": task,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {n} items, corpus {corpus} {bleu_metric.get_signature()}")


if __name__ == "__main__":
    main()
