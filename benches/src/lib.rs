//! Support for infergate's benchmarks: see `benches/` for the criterion benches and
//! `benches/load.sh` for the end-to-end load benchmark.
