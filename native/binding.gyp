{
  "targets": [
    {
      "target_name": "alignflow_native",
      "sources": ["src/addon.cc", "src/pool.cc", "src/kernels.cc", "src/fused.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-march=native"],
      "cflags_cc!": ["-fno-exceptions"],
      "include_dirs": ["<!@(node -e \"process.stdout.write(process.env.ALIGNFLOW_CBLAS_INCLUDE||'')\")"],
      "libraries": ["<!@(node -e \"process.stdout.write(process.env.ALIGNFLOW_CBLAS_LIBS||'-lopenblas')\")", "-lpthread"]
    }
  ]
}
