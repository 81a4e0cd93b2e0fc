//! Read models fed from the event log. Work in progress: see issue 4.
