listen = "localhost"

scheduler {
  policy = "LIFO"
}

auth "file" {
  start_timeout = "soon"
}
