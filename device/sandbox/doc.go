// Package sandbox runs natcheck's live-device work in a child process of its
// own, so that nothing it creates outlives natcheck.
//
// [Enter] re-executes the running program, with the same arguments, in new
// network and mount namespaces (and a new user namespace when not root,
// where uid 0 inside maps to the caller), with a parent-death signal of
// SIGKILL: when natcheck dies, however it dies, the kernel kills the
// sandbox, and every network namespace, interface, nftables table and
// conntrack entry made inside it goes with it (they are held only by the
// sandbox's file descriptors and threads, never by a name in /run/netns or
// a bind mount). [Inside] tells the child that it is the sandbox.
//
// Inside the sandbox, [NewNamespace] makes further network namespaces held
// by file descriptors, and [Namespace.Do] runs code in one on a locked OS
// thread (for sockets and sysctls, which belong to the namespace of the
// thread that opens them). [Preflight] names, in one message, everything
// the live devices need that this machine lacks.
//
// This package touches only namespaces it creates; it never changes an
// interface, a table or a sysctl of the namespaces it was started in. It
// imports the standard library, golang.org/x/sys/unix and
// github.com/vishvananda/netns.
package sandbox
