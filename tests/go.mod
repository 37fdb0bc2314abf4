module github.com/caddy-wagi/caddy-wagi/tests

go 1.25

require github.com/hashicorp/yamux v0.1.2
