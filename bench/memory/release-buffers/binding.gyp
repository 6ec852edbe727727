{
  "targets": [
    {
      "target_name": "release_buffers",
      "sources": ["release_buffers.cc"]
    }
  ]
}
