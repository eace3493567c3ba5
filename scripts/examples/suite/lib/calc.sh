# The code under test: small shell functions.
add() { echo $(($1 + $2)); }
shout() { echo "$1" | tr 'a-z' 'A-Z'; }
