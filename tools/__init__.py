"""The tools of the project's development, not the product (none of it is in the image): procs, the one
process library; devstack (`make run`, `make test`), chaos (`make chaos`), bench (`make bench`)."""
