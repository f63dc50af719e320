//! What the container process does between clone and execve. (Stub.)
