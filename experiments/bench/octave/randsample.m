function y = randsample(n, k)
% k distinct integers from 1..n as a column (the statistics package's randsample(n, k), which COSDISH.m calls)
p = randperm(n); y = p(1:k)';
end
