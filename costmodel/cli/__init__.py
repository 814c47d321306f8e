"""The command line: a thin shell that parses, calls one library function per command and renders.
Imports anything below it; nothing imports it."""
