def fn(input, headers):
    return input
