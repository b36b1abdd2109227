//! Ingest formats. Each submodule is a pure parser/decoder plus, where the
//! format needs it, the step that turns parsed input into storage writes;
//! all writes go through [`crate::storage::Appender`].

pub mod text;
