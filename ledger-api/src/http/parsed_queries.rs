//! Parsed GraphQL documents, kept by query text.
//!
//! Clients send the same few documents over and over with other variables; parsing one
//! (async-graphql's pest grammar) cost more of the server's time than answering it from the
//! database in the `payment(id)` benchmark. A parsed document is reused as is: async-graphql
//! still checks its depth, directives, validity and complexity on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// Most documents kept; an arbitrary one makes room for a new one beyond that.
pub const MAX_CACHED_DOCUMENTS: usize = 512;
/// Longer query texts are parsed every time rather than kept.
pub const MAX_CACHED_QUERY_BYTES: usize = 16 * 1024;

#[derive(Default)]
pub struct ParsedQueryCache {
    documents: Mutex<HashMap<Arc<str>, ExecutableDocument>>,
}

impl ParsedQueryCache {
    /// The document of `query`, parsed now or before; `None` when it does not parse (the
    /// schema then parses it again to report the error the usual way) or is not kept.
    pub fn document(&self, query: &str) -> Option<ExecutableDocument> {
        if query.len() > MAX_CACHED_QUERY_BYTES {
            return None;
        }
        if let Some(document) = self.lock().get(query) {
            return Some(document.clone());
        }
        let document = async_graphql::parser::parse_query(query).ok()?;
        let mut documents = self.lock();
        if documents.len() >= MAX_CACHED_DOCUMENTS {
            if let Some(evicted) = documents.keys().next().cloned() {
                documents.remove(&evicted);
            }
        }
        documents.insert(Arc::from(query), document.clone());
        Some(document)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, ExecutableDocument>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.documents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_reused() {
        let cache = ParsedQueryCache::default();
        let query = "query($id: UUID!) { payment(id: $id) { id status } }";
        let first = cache.document(query).expect("parses");
        let second = cache.document(query).expect("kept");
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_query_that_does_not_parse_is_not_kept() {
        let cache = ParsedQueryCache::default();
        assert!(cache.document("{ payment(id: ").is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = ParsedQueryCache::default();
        for field in 0..MAX_CACHED_DOCUMENTS + 50 {
            assert!(cache.document(&format!("{{ field{field} }}")).is_some());
        }
        assert_eq!(cache.len(), MAX_CACHED_DOCUMENTS);
    }

    #[test]
    fn a_long_query_is_parsed_but_not_kept() {
        let cache = ParsedQueryCache::default();
        let long = format!("{{ a{} }}", "b".repeat(MAX_CACHED_QUERY_BYTES));
        assert!(cache.document(&long).is_none());
        assert!(cache.is_empty());
    }
}
