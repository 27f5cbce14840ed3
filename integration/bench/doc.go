// Package bench measures ktrdr-images against the Dockerfile way, side by
// side on the offline world's buildkitd (integration/world), with the same
// example app, the same local registry and the same local package index.
//
// "Ours" is internal/build.Run: the four variants as Go-built LLB graphs,
// solved concurrently with shared layers, one export per image. The
// "baseline" is four Dockerfiles kept as benchmark data in baseline/,
// equivalent to the seed's (KTRDR's milestone 3) and adapted only where the
// offline world requires it, built through BuildKit's built-in Dockerfile
// frontend, one solve per image, the four solves at once as a CI matrix
// (or buildx bake) runs them.
//
// BenchmarkImages runs the whole comparison (cold, warm, code-change and
// dependency-change builds, alternating ours and the baseline, image sizes,
// bytes pushed, unique registry bytes, build context bytes) and writes
// docs/bench/results.csv and docs/bench/results.png; README.md in this
// directory gives the command. BenchmarkGraphMarshal times building and
// marshaling the four definitions with no daemon. Both skip under -short.
package bench
