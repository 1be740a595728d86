module github.com/omnikv-triton/omnikv-triton

go 1.26
