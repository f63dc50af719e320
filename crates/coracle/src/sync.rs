//! The parent/child protocol over a socketpair. (Stub.)
