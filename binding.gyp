{
  "targets": [
    {
      "target_name": "salt_transfer",
      "sources": ["<!@(node scripts/native-config.cjs sources)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/core/include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y"],
      "cflags": ["-O3", "-fopenmp", "-fvisibility=hidden"],
      "cflags_cc": ["-O3", "-ffp-contract=off", "-std=c++17", "-fexceptions", "-fopenmp", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["<!@(node scripts/native-config.cjs libs)"],
      "ldflags": ["-fopenmp", "-Wl,--exclude-libs,ALL", "-Wl,--as-needed"]
    }
  ]
}
