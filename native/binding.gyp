{
  "targets": [
    {
      "target_name": "execwatch",
      "sources": [
        "execwatch.cc",
        "tracer.cc",
        "delivery.cc",
        "rodata.cc",
        "errors.cc",
        "capabilities.cc",
        "user.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../bpf"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags": [
        "-fvisibility=hidden",
        "-fstack-protector-strong",
        "-Wall",
        "-Wextra",
        "<!@(pkg-config --cflags libbpf)"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-fexceptions"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "libraries": ["<!@(pkg-config --libs libbpf)"]
    }
  ]
}
