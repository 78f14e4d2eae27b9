% jhash bench driver (ours): ITQ, PCA to bits dimensions then the authors' trainITQ.m (50 iterations), on train.mat.
% Needs code_dir/hbir = a copy of willard-yuan/hashing-baseline-for-image-retrieval (its folder Method-ITQ).
% Sets fit_seconds.
addpath(fullfile(code_dir, 'hbir', 'Method-ITQ'));
load train.mat;
t0 = tic();
mu = mean(X, 1); Xc = X - mu; [V, D] = eig(Xc' * Xc); [~, o] = sort(diag(D), 'descend');
ITQparam.pcaW = V(:, o(1:bits)); ITQparam.nbits = bits;
ITQparam = trainITQ(Xc, ITQparam);
fit_seconds = toc(t0);
