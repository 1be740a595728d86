// Package omnikv holds OmniKV's decisions, as ../shared/facts/omnikv.md specifies them: which layers are
// dense, filter or sparse (the layer plan), how a filter layer scores the context (the selectors), how many
// tokens it keeps (the budget) and which (top-k, sorted, ties to the lower index). It is pure logic; the
// scores themselves are computed by compute.Device.SelectScores and the rows are moved by kvcache.
package omnikv
