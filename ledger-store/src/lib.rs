//! The PostgreSQL event log. Work in progress: see issue 3.
