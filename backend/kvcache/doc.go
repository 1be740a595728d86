// Package kvcache owns the keys and values of every sequence: fixed-size pages in stores that the device
// creates per tier (resident layers, OmniKV's offloaded layers in host memory or a memory-mapped file, and
// their staging), a block table per sequence that serves every layer, and growth by adding pages (never by
// copying the cache). The pool counts the bytes of each tier against its budget so that the engine can admit
// sequences only while memory lasts (BudgetError, CanEverFit, Usage), and gives the memory of free pages
// beyond a watermark back to the system (Trim, MaybeTrim) so that a server's memory falls again after a
// burst.
package kvcache
