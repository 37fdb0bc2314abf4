module github.com/caddy-wagi/caddy-wagi/examples

go 1.25
