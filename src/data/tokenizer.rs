//! The tokenizer: the bert-base-uncased WordPiece vocabulary (30,522 ids) from
//! `assets/tokenizer/tokenizer.json`, through HuggingFace `tokenizers`.
//!
//! The file carries fixed padding and truncation to 128 tokens (it came with a sentence
//! embedding model); both are switched off here, because the data layer builds its own
//! long inputs and places the special tokens itself. So encoding never adds `[CLS]`/`[SEP]`.

use std::path::Path;
use std::sync::Arc;

use tokenizers::Tokenizer;

use super::error::DataError;

/// The shipped tokenizer file, compiled in so the binary needs no asset path at run time.
const BUNDLED: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/tokenizer/tokenizer.json"
));

/// The ids the input layout `[BOS] context [SEP] question [SEP] answer [EOS]` needs.
///
/// BERT's vocabulary has no end-of-sequence token: `[SEP]` already separates the context,
/// question and answer, so reusing it for EOS would make "answer finished" look like "another
/// segment starts". `[unused0]` (id 1) is a real vocabulary slot no text ever produces, so it
/// is a distinct EOS the model can learn; `[CLS]` serves as BOS and `[PAD]` as padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Specials {
    pub bos: u32,
    pub sep: u32,
    pub eos: u32,
    pub pad: u32,
}

/// Token strings behind [`Specials`], looked up by name so a different vocabulary errors
/// instead of silently using wrong ids.
pub const BOS_TOKEN: &str = "[CLS]";
pub const SEP_TOKEN: &str = "[SEP]";
pub const EOS_TOKEN: &str = "[unused0]";
pub const PAD_TOKEN: &str = "[PAD]";

/// A loaded tokenizer (cheap to clone: the vocabulary is shared).
#[derive(Clone)]
pub struct Tok {
    inner: Arc<Tokenizer>,
    specials: Specials,
}

impl std::fmt::Debug for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tok")
            .field("vocab_size", &self.vocab_size())
            .field("specials", &self.specials)
            .finish()
    }
}

fn tok_err(what: &str, e: impl std::fmt::Display) -> DataError {
    DataError::Tokenizer {
        what: what.to_string(),
        message: e.to_string(),
    }
}

impl Tok {
    /// The project's tokenizer (`assets/tokenizer/tokenizer.json`, compiled in).
    pub fn bundled() -> Result<Self, DataError> {
        let t = Tokenizer::from_bytes(BUNDLED).map_err(|e| tok_err("assets/tokenizer", e))?;
        Self::from_tokenizer(t, "assets/tokenizer")
    }

    /// A tokenizer file in the HuggingFace JSON format.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let label = path.as_ref().display().to_string();
        let t = Tokenizer::from_file(path.as_ref()).map_err(|e| tok_err(&label, e))?;
        Self::from_tokenizer(t, &label)
    }

    fn from_tokenizer(mut t: Tokenizer, label: &str) -> Result<Self, DataError> {
        t.with_padding(None);
        t.with_truncation(None).map_err(|e| tok_err(label, e))?;
        let id = |s: &str| {
            t.token_to_id(s)
                .ok_or_else(|| DataError::MissingToken(s.to_string()))
        };
        let specials = Specials {
            bos: id(BOS_TOKEN)?,
            sep: id(SEP_TOKEN)?,
            eos: id(EOS_TOKEN)?,
            pad: id(PAD_TOKEN)?,
        };
        Ok(Tok {
            inner: Arc::new(t),
            specials,
        })
    }

    pub fn specials(&self) -> Specials {
        self.specials
    }

    /// Vocabulary size including added tokens (the model's embedding rows).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text`, no special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        Ok(self.encode_with_offsets(text)?.0)
    }

    /// Token ids and, per token, its `[start, end)` BYTE range in `text`, so a byte span of
    /// an answer maps to the tokens that overlap it (see [`Tok::byte_span_to_tokens`]).
    #[allow(clippy::type_complexity)]
    pub fn encode_with_offsets(
        &self,
        text: &str,
    ) -> Result<(Vec<u32>, Vec<(usize, usize)>), DataError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| tok_err("encode", e))?;
        Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()))
    }

    /// Text of `ids`, special tokens included (WordPiece `##` pieces joined).
    pub fn decode(&self, ids: &[u32]) -> Result<String, DataError> {
        self.inner
            .decode(ids, false)
            .map_err(|e| tok_err("decode", e))
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The tokens overlapping the byte range `[start, end)`, as a token span `[first, last+1)`;
    /// `None` when no token overlaps it (e.g. the span covers only whitespace).
    pub fn byte_span_to_tokens(
        offsets: &[(usize, usize)],
        start: usize,
        end: usize,
    ) -> Option<(usize, usize)> {
        // Offsets are in text order, so the overlapping tokens are one contiguous run.
        let first = offsets.partition_point(|&(_, e)| e <= start);
        let last = first + offsets[first..].partition_point(|&(s, _)| s < end);
        (last > first).then_some((first, last))
    }
}
